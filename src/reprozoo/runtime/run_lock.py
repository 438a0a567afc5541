"""One process at a time per run folder: an advisory lock on ``<run>/.lock``.

The lock is ``fcntl.flock`` on a small file that holds the owner's PID. The kernel drops a flock
when its process ends in any way (exit, crash, SIGKILL), so a ``.lock`` file left behind by a dead
process holds no lock and the next run simply takes it over; a live owner is named in the error.
Trying the lock never writes to the file: a refused run leaves the folder byte-identical.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from reprozoo.errors import OutputError

LOCK_NAME = ".lock"


class RunLock:
    """``RunLock(folder).acquire()`` ... ``release()``; ``acquire`` raises :class:`OutputError`
    naming the PID that holds the folder."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None
        self.created = False  # this process made the .lock file (a refused try removes it again)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        import fcntl

        for _ in range(50):  # the file may be replaced between open and flock: try again
            existed = self.path.exists()
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except PermissionError:
                fd = self._open_read_only()
            except OSError as err:
                raise OutputError(f"cannot write into {self.folder}: {err.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise OutputError(self._busy_message()) from None
            if not self._same_file(fd):
                os.close(fd)
                continue
            self._fd, self.created = fd, not existed
            return
        raise OutputError(f"could not lock {self.path}: it keeps being replaced by another process")

    def mark(self) -> None:
        """Write this process's PID into the held lock (after the folder checks passed, so a refused
        run never changes a lock file it found)."""
        try:
            os.ftruncate(self._fd, 0)
            os.write(self._fd, f"{os.getpid()}\n".encode())
        except OSError as err:
            self.release(remove=self.created)
            raise OutputError(f"cannot write into {self.folder}: {err.strerror}") from None

    def _open_read_only(self) -> int:
        """A folder we may not write to: only an existing lock held by a live run can be reported."""
        try:
            return os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as err:
            raise OutputError(f"cannot write into {self.folder}: {err.strerror}") from None

    def _same_file(self, fd: int) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        own = os.fstat(fd)
        return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)

    def _busy_message(self) -> str:
        pid = holder_pid(self.path)
        who = f"process {pid}" if pid else "another process"
        return (f"{self.folder} is in use by a running reprozoo run ({who}); wait for it to end, "
                "stop it (Ctrl-C), or choose another --out")

    def release(self, remove: bool = True) -> None:
        """Give the folder back; ``remove`` deletes the lock file first (while still holding it)."""
        if self._fd is None:
            return
        if remove:
            try:
                if self._same_file(self._fd):
                    self.path.unlink()
            except OSError:
                pass
        os.close(self._fd)  # closing the last descriptor drops the flock
        self._fd = None


def holder_pid(path: Path, wait_s: float = 1.0) -> int | None:
    """The PID written in a lock file (waits briefly: the owner writes it right after locking)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            text = Path(path).read_text().strip()
        except OSError:
            text = ""
        if text.isdigit():
            return int(text)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)
