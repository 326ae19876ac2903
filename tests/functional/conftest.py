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

"""Fixtures starting real components (libvirtd, QEMU, sshd, SASL, TLS)."""

import concurrent.futures
import ctypes
import os
import subprocess

import libvirt
import pytest

from tests.harness import libvirtd as harness_libvirtd
from tests.harness import system

_CLONE_NEWNS = 0x00020000
_SYSTEM_RUN_DIR = '/run/libvirt'


def _in_ci():
    return os.environ.get('CI', '').lower() not in ('', '0', 'false', 'no')


def require_real_components():
    """Skip (fail in CI) when real components cannot run here."""
    reason = system.skip_reason()
    if reason is None:
        return
    if _in_ci():
        pytest.fail('CI must run the functional tests, but: %s' % reason,
                    pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope='session')
def libvirtd():
    """A private libvirtd with unix, qemu+tcp (SASL), qemu+tls and ssh."""
    require_real_components()
    with harness_libvirtd.Libvirtd(tcp=True, tls=True, ssh=True) as daemon:
        yield daemon


@pytest.fixture
def clean_libvirtd(libvirtd):
    """The session's libvirtd, with every domain removed after the test."""
    yield libvirtd
    libvirtd.cleanup_domains()


@pytest.fixture(scope='session')
def system_socket(libvirtd):
    """Make plain ``qemu:///system`` reach the harness's libvirtd.

    The harness's unix socket is not at libvirt's default path, and the
    driver's URI policy refuses ``socket=``. So this test process moves to
    a mount namespace of its own in which /run/libvirt is the harness's
    run directory; threads started later inherit it, and the host's
    /run/libvirt is left alone.

    :returns: the URI, ``qemu:///system``.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNS):
        errno = ctypes.get_errno()
        raise OSError(errno, 'unshare(CLONE_NEWNS): %s' % os.strerror(errno))
    os.makedirs(_SYSTEM_RUN_DIR, exist_ok=True)
    subprocess.run(['mount', '--make-rprivate', '/'], check=True)
    subprocess.run(['mount', '--bind', str(libvirtd.run_dir),
                    _SYSTEM_RUN_DIR], check=True)
    yield 'qemu:///system'
    subprocess.run(['umount', _SYSTEM_RUN_DIR], check=True)


@pytest.fixture(scope='session')
def observer(libvirtd):
    """The tests' own libvirt connection, apart from the driver's."""
    conn = libvirt.open(libvirtd.uri_unix)
    yield conn
    conn.close()


@pytest.fixture(scope='class')
def hypervisor(request, libvirtd, system_socket, observer):
    """Hand the harness to a test class; remove every domain after it.

    ``disposer`` runs the removal of each test's domains in the background.
    """
    request.cls.daemon = libvirtd
    request.cls.observer = observer
    with concurrent.futures.ThreadPoolExecutor(4) as disposer:
        request.cls.disposer = disposer
        yield libvirtd
    libvirtd.cleanup_domains()
