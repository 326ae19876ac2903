# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Starting and stopping the harness's daemons by PID."""

import ctypes
import os
import signal
import subprocess

from tests.harness import system

_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # If the test run itself is killed, its daemons get SIGTERM too.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG,
                                            signal.SIGTERM)


def spawn(cmd, log_file, env=None):
    """Start a foreground daemon, its output appended to log_file.

    The daemon gets SIGTERM if the thread that started it ends, so start
    daemons from the main thread (as pytest fixtures are).
    """
    with open(log_file, 'ab') as log:
        return subprocess.Popen(
            [str(c) for c in cmd], stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, env=dict(os.environ, **(env or {})),
            start_new_session=True, preexec_fn=_die_with_parent)


def tail(log_file, chars=3000):
    """The end of a log file, for error messages."""
    try:
        with open(log_file, 'rb') as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - chars))
            return log.read().decode(errors='replace')
    except OSError:
        return ''


def check_alive(proc, name, log_file):
    """Return True, or raise HarnessError with the log if proc exited."""
    if proc.poll() is not None:
        raise system.HarnessError('%s exited with status %s:\n%s'
                                  % (name, proc.returncode, tail(log_file)))
    return True


def terminate(proc, timeout=10):
    """SIGTERM proc, SIGKILL it if still there after timeout seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def kill_group(proc):
    """SIGKILL proc's whole process group (forked workers too), reap proc."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def stop_group(proc, timeout):
    """SIGTERM proc (a graceful stop), then kill_group() after timeout."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    kill_group(proc)


def read_log(log_file):
    """A whole log file as text; empty if it does not exist yet."""
    try:
        with open(log_file, errors='replace') as log:
            return log.read()
    except FileNotFoundError:
        return ''
