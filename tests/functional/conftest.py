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

import os

import pytest

from tests.harness import libvirtd as harness_libvirtd
from tests.harness import system


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
