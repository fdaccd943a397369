"""GuardedExecute caps outputs (output bombs) without breaking what a student should see.

Text is cut at ``max_output_chars``; a base64 image is kept whole (a cut one no longer decodes:
the m3 Sobel figure showed as a broken image in every feedback page) or, past
``max_image_chars``, replaced by a French note.
"""

from __future__ import annotations

import base64

import nbformat

from autograder.grading.preprocessors import GuardedExecute


def _cell(*outputs):
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    return cell


def test_text_is_cut_and_images_are_kept_whole_or_dropped_with_a_note():
    ex = GuardedExecute(max_output_chars=100, max_image_chars=10_000)
    png = base64.b64encode(b"\x89PNG" + bytes(range(256)) * 20).decode()  # ~7 k chars: kept
    huge = base64.b64encode(bytes(range(256)) * 100).decode()  # ~34 k chars: dropped
    cell = _cell(
        {"output_type": "stream", "name": "stdout", "text": "a" * 500},
        {"output_type": "display_data", "metadata": {}, "data": {"image/png": png, "text/plain": "<Figure>"}},
        {"output_type": "display_data", "metadata": {}, "data": {"image/jpeg": huge, "text/html": "<b>" * 300}},
    )
    ex._cap_outputs(cell)
    stream, small, big = cell.outputs
    assert stream["text"].startswith("a" * 100) and len(stream["text"]) < 200 and "coupée à 100" in stream["text"]
    assert small["data"]["image/png"] == png  # whole: it still decodes
    base64.b64decode(small["data"]["image/png"], validate=True)
    assert "image/jpeg" not in big["data"]
    assert big["data"]["text/plain"].startswith("[image de 25 Kio retirée")
    assert len(big["data"]["text/html"]) == 101  # text-like data is cut
