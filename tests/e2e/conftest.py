#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""Fixtures for end-to-end tests against a real standalone Ironic."""

import importlib.metadata
import os
import sys
import warnings

import pytest

from tests.harness import ironic as ironic_harness

PROJECT_HARDWARE_TYPES = [
    'libvirt', 'pxe_libvirt_agent', 'pxe_libvirt_iscsi', 'fake_libvirt_fake',
]
PROJECT_ENTRY_POINTS = {
    'ironic.hardware.types': PROJECT_HARDWARE_TYPES,
    'ironic.hardware.interfaces.power': ['libvirt'],
    'ironic.hardware.interfaces.management': ['libvirt'],
}


def _project_drivers_missing():
    """Why this project's drivers cannot be loaded, or None if they can."""
    for group, names in PROJECT_ENTRY_POINTS.items():
        found = {ep.name: ep
                 for ep in importlib.metadata.entry_points(group=group)}
        for name in names:
            if name not in found:
                return 'entry point %s:%s is not installed' % (group, name)
            try:
                with warnings.catch_warnings():
                    # Ironic's imports warn about eventlet.
                    warnings.simplefilter('ignore')
                    found[name].load()
            except Exception as exc:
                return 'entry point %s:%s does not load: %r' % (
                    group, name, exc)
    return None


PROJECT_DRIVERS_MISSING = _project_drivers_missing()


def pytest_report_header(config):
    if PROJECT_DRIVERS_MISSING:
        return ('e2e: ironic-libvirt drivers unavailable (%s); using '
                'fake-hardware only' % PROJECT_DRIVERS_MISSING)
    return 'e2e: ironic-libvirt hardware types: %s' % ', '.join(
        PROJECT_HARDWARE_TYPES)


@pytest.fixture(scope='session')
def ironic(tmp_path_factory):
    """A running IronicService with this project's drivers if loadable.

    ``fake-hardware`` with fake power and management is always enabled.
    """
    bin_dir = os.path.dirname(sys.executable)
    if not os.path.exists(os.path.join(bin_dir, 'ironic')):
        pytest.skip('no ironic in %s: run pytest from the Ironic venv'
                    % bin_dir)
    if PROJECT_DRIVERS_MISSING:
        kwargs = {}
    else:
        kwargs = {
            'enabled_hardware_types': PROJECT_HARDWARE_TYPES + [
                'fake-hardware'],
            'enabled_power_interfaces': ['libvirt', 'fake'],
            'enabled_management_interfaces': ['libvirt', 'fake'],
            'config': {'libvirt': {'allow_test_driver': True}},
        }
    with ironic_harness.IronicService(
            tmp_path_factory.mktemp('ironic'), bin_dir=bin_dir,
            **kwargs) as service:
        yield service
