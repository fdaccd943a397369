"""The kernel client that is ready at the kernel's own ``idle`` (autograder/grading/ready_client.py).

Real ipykernel kernels over IPC. End to end, every nbgrader run of the suite connects with it
(nbgrader_config.py installs it).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from queue import Empty

import pytest
from jupyter_client import AsyncKernelManager

from autograder.grading.ready_client import ReadyClient

ROOT = Path(__file__).resolve().parents[1]


def _manager(tmp_path: Path) -> AsyncKernelManager:
    km = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=str(tmp_path / "kernel"))
    km.client_class = "autograder.grading.ready_client.ReadyClient"
    return km


async def _drained_then_runs(km: AsyncKernelManager) -> None:
    await km.start_kernel()
    kc = km.client()
    assert isinstance(kc, ReadyClient)
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        # Nothing of the handshake is left on IOPub: what jupyter_client's drain guaranteed.
        with pytest.raises(Empty):
            await kc.iopub_channel.get_msg(timeout=0.5)
        msg_id = kc.execute("print(6 * 7)")
        seen = []
        while True:
            msg = await kc.iopub_channel.get_msg(timeout=30)
            assert msg["parent_header"].get("msg_id") == msg_id, msg["msg_type"]
            seen.append(msg["msg_type"])
            if msg["msg_type"] == "stream":
                assert msg["content"]["text"] == "42\n"
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        assert seen[0] == "status" and "stream" in seen
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)


def test_ready_with_iopub_drained_and_messages_in_order(tmp_path):
    asyncio.run(_drained_then_runs(_manager(tmp_path)))


class _LosesFirstIdle(ReadyClient):
    """IOPub that misses the first round's messages, as a socket still subscribing does."""

    rounds = 0

    async def _next(self, channel, wait, wanted, msg_id):  # type: ignore[override]
        if channel is self.iopub_channel:
            type(self).rounds += 1
            if type(self).rounds == 1:
                await asyncio.sleep(wait)
                return None
        return await super()._next(channel, wait, wanted, msg_id)


async def _asks_again(km: AsyncKernelManager) -> None:
    await km.start_kernel()
    km.client_factory = _LosesFirstIdle
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        assert _LosesFirstIdle.rounds == 2
        with pytest.raises(Empty):
            await kc.iopub_channel.get_msg(timeout=0.5)
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)


def test_a_lost_idle_makes_it_ask_again(tmp_path):
    asyncio.run(_asks_again(_manager(tmp_path)))


async def _dead(km: AsyncKernelManager) -> float:
    await km.start_kernel()
    os.kill(km.provisioner.pid, signal.SIGKILL)
    kc = km.client()
    kc.start_channels()
    start = time.monotonic()
    try:
        with pytest.raises(RuntimeError, match="died"):
            await kc.wait_for_ready(timeout=60)
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)
    return time.monotonic() - start


def test_a_dead_kernel_is_reported_not_waited_for(tmp_path):
    assert asyncio.run(_dead(_manager(tmp_path))) < 30  # the 60 s timeout is not what ended it


def test_nbgrader_config_installs_it(tmp_path):
    # In a process of its own: loading nbgrader_config.py sets environment variables.
    probe = (
        "from traitlets.config.loader import PyFileConfigLoader\n"
        "from jupyter_client import AsyncKernelManager\n"
        f"config = PyFileConfigLoader('nbgrader_config.py', path={str(ROOT)!r}).load_config()\n"
        "print(AsyncKernelManager(kernel_name='python3', config=config).client_factory.__qualname__)\n"
    )
    env = {**os.environ, "COURSE_ROOT": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "ReadyClient"
