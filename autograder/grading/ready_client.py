"""A kernel client that is ready as soon as the kernel has answered, not 0.2-0.4 s later.

nbclient connects a client to each notebook's kernel and waits for it with
``wait_for_ready``. jupyter_client 8's version sends ``kernel_info_request`` until the reply
comes *and* one IOPub message follows within 0.2 s (an IOPub socket that is still subscribing
loses the first messages: it then waits the 0.2 s and asks again), then drains IOPub until 0.2 s
pass without a message. Every notebook graded pays that drain's 0.2 s, and often a lost first
round's 0.2 s too: ~0.3 s per notebook on this project's benchmark, a third of nbgrader's own
overhead beyond the cells.

:class:`ReadyClient` waits for the same two facts and stops when both are in: the
``kernel_info_reply`` to its request (shell channel) and the kernel's ``status: idle`` for that
same request (IOPub). The kernel publishes ``idle`` after it has sent everything for a request,
and ZMQ keeps each socket's order, so that ``idle`` proves IOPub is connected and that every
IOPub message sent before it has been read (and dropped, as the drain drops them). If it does
not come within 0.2 s (the subscription was not ready when it was sent), the client asks again,
as jupyter_client does. Clients not made by a kernel manager (no process to watch) keep
jupyter_client's heartbeat wait. Installed by ``nbgrader_config.py``
(``c.AsyncKernelManager.client_class``); ``tests/test_ready_client.py`` checks it against real
kernels.
"""

from __future__ import annotations

import time
from queue import Empty
from typing import Any

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.client import KernelClient
from jupyter_client.manager import KernelManager

#: How long the IOPub ``idle`` of one ``kernel_info_request`` may take (jupyter_client's figure).
IOPUB_WAIT = 0.2
#: How long the shell reply may take before the request is sent again (jupyter_client's figure).
SHELL_WAIT = 1.0


class ReadyClient(AsyncKernelClient):
    """:class:`AsyncKernelClient` whose ``wait_for_ready`` returns once the kernel is ready."""

    async def wait_for_ready(self, timeout: float | None = None) -> None:  # type: ignore[override]
        # (AsyncKernelClient binds ``wait_for_ready`` to KernelClient's function itself, so
        # the method replaced is this one, not ``_async_wait_for_ready``.)
        if not isinstance(self.parent, KernelManager):
            await KernelClient._async_wait_for_ready(self, timeout=timeout)
            return
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            msg_id = self.kernel_info()
            reply = await self._next(self.shell_channel, SHELL_WAIT, _answers, msg_id)
            if reply is not None and reply["msg_type"] == "kernel_info_reply":
                idle = await self._next(self.iopub_channel, IOPUB_WAIT, _idle_after, msg_id)
                if idle is not None:
                    self._handle_kernel_info_reply(reply)
                    return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")

    @staticmethod
    async def _next(channel: Any, wait: float, wanted: Any, msg_id: str) -> dict[str, Any] | None:
        """The first message on ``channel`` for which ``wanted(msg, msg_id)`` within ``wait`` s (others dropped)."""
        end = time.monotonic() + wait
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            try:
                msg = await channel.get_msg(timeout=left)
            except Empty:
                return None
            if wanted(msg, msg_id):
                return msg


def _answers(msg: dict[str, Any], msg_id: str) -> bool:
    return msg.get("parent_header", {}).get("msg_id") == msg_id


def _idle_after(msg: dict[str, Any], msg_id: str) -> bool:
    return (
        msg.get("msg_type") == "status"
        and msg.get("content", {}).get("execution_state") == "idle"
        and _answers(msg, msg_id)
    )
