"""The worker threads of one service: SDK calls, keyring reads and disk work of async callers.

Each pool is made on first use (start-up starts no thread) and stopped by :meth:`Workers.close`;
a closed set of workers makes its pools again on demand, so a closed service stays usable. The
features that use them hold this object, never a pool, for that reason (docs/architecture.md,
"The service: composition root and features").
"""

from __future__ import annotations

import concurrent.futures
import threading

from comfyvn_gui.providers.base import BlockingExecutor


class Workers:
    """The three pools of a service, made on demand."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executor: BlockingExecutor | None = None
        self._keyring_executor: BlockingExecutor | None = None
        self._io_pool: concurrent.futures.ThreadPoolExecutor | None = None

    @property
    def executor(self) -> BlockingExecutor:
        """SDK calls of the checks; each provider kind is limited to a lane of 4 workers."""
        with self._lock:
            if self._executor is None:
                self._executor = BlockingExecutor(max_workers=16, lane_limit=4)
            return self._executor

    @property
    def keyring_executor(self) -> BlockingExecutor:
        """Keyring reads: their own workers, so busy SDK calls never delay them."""
        with self._lock:
            if self._keyring_executor is None:
                self._keyring_executor = BlockingExecutor(max_workers=4)
            return self._keyring_executor

    @property
    def io_pool(self) -> concurrent.futures.ThreadPoolExecutor:
        """Disk and keyring work of async callers (recording check results, the GUI's calls)."""
        with self._lock:
            if self._io_pool is None:
                self._io_pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=4, thread_name_prefix="comfyvn-io"
                )
            return self._io_pool

    def close(self) -> None:
        """Stop every pool made so far, waiting for running calls to end."""
        with self._lock:
            executors = [self._executor, self._keyring_executor]
            io = self._io_pool
            self._executor = self._keyring_executor = self._io_pool = None
        for pool in executors:
            if pool is not None:
                pool._pool.shutdown(wait=True, cancel_futures=True)
        if io is not None:
            io.shutdown(wait=True, cancel_futures=True)
