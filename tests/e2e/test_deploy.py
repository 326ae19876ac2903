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

"""Real deploys: Ironic's agent writes an image onto a QEMU domain's disk.

One deploy lab for the module (tests/harness/deploy.py: a private network
namespace with libvirtd, the lab networks, a web server and Ironic), one
TCG guest at a time. Each scenario is driven with ``baremetal`` and then
checked outside Ironic: the bytes in the domain's disk file, the domain's
saved XML and its state. Progress lines (phase, seconds) go to stdout:
``tools/test tests/e2e/test_deploy.py -s`` shows them as they happen.
"""

import xml.etree.ElementTree as ET

import libvirt
import pytest

from tests.e2e import conftest
from tests.harness import deploy as harness_deploy
from tests.harness import system

SECTOR = 512
MBR_SIGNATURE = b'\x55\xaa'
# Seconds a ramdisk that never calls back is given before Ironic gives up.
SHORT_CALLBACK_TIMEOUT = 30


def _disk_head(domain, size):
    with open(domain.disk, 'rb') as disk:
        return disk.read(size)


def _boot_devices(domain, flags=libvirt.VIR_DOMAIN_XML_INACTIVE):
    """The domain's <os><boot dev> list (saved definition by default)."""
    return [boot.get('dev') for boot in
            ET.fromstring(domain.XMLDesc(flags)).iterfind('os/boot')]


def _cdrom_source(domain, flags):
    disk = ET.fromstring(domain.XMLDesc(flags)).find(
        "devices/disk[@device='cdrom']/source")
    return None if disk is None else disk.get('file')


def _state(domain):
    return domain.state()[0]


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    """The module's deploy lab; needs root and the deploy ramdisk."""
    reason = system.skip_reason()
    if reason is not None:
        conftest.skip_or_fail(reason)
    if conftest.PROJECT_DRIVERS_MISSING:
        conftest.skip_or_fail('ironic-libvirt drivers unavailable: %s'
                              % conftest.PROJECT_DRIVERS_MISSING)
    progress = harness_deploy.Progress('deploy')
    base_dir = tmp_path_factory.mktemp('deploy-lab')
    try:
        kernel, ramdisk = harness_deploy.deploy_ramdisk(base_dir / 'ramdisk',
                                                        progress)
    except harness_deploy.RamdiskUnavailable as exc:
        conftest.skip_or_fail('no deploy ramdisk: %s' % exc)
    with harness_deploy.DeployLab(base_dir / 'lab', kernel, ramdisk,
                                  progress) as made:
        yield made


@pytest.fixture(scope='module')
def image(lab):
    """(bytes, URL, sha256) of the whole-disk image the tests deploy."""
    data = harness_deploy.whole_disk_image()
    url, checksum = lab.add_image('disk.raw', data)
    return data, url, checksum


@pytest.fixture
def flow(lab):
    """A fresh domain and its :class:`NodeFlow`; both removed after."""
    made = []

    def make():
        made.append(harness_deploy.NodeFlow(lab, lab.create_domain()))
        return made[-1]

    yield make
    for node_flow in made:
        node_flow.delete()
    lab.remove_domains()


def _assert_deployed(node, domain, data):
    """The image is on the disk, the domain runs and boots from it."""
    assert node['provision_state'] == 'active'
    assert node['last_error'] is None
    on_disk = _disk_head(domain, len(data))
    assert on_disk[1 << 20:].startswith(harness_deploy.IMAGE_MARKER)
    assert on_disk == data
    assert _boot_devices(domain)[0] == 'hd'
    assert _state(domain) == libvirt.VIR_DOMAIN_RUNNING


def test_pxe_libvirt_agent_ipxe_clean_deploy_undeploy(lab, image, flow):
    data, url, checksum = image
    node = flow()
    domain = node.domain
    # Something for erase_devices_metadata to erase: an MBR signature.
    with open(domain.disk, 'r+b') as disk:
        disk.write(data[:SECTOR])
    node.enroll('pxe_libvirt_agent', boot='ipxe')
    node.manage()

    node.provide()
    assert _disk_head(domain, SECTOR)[510:] != MBR_SIGNATURE
    assert _state(domain) == libvirt.VIR_DOMAIN_SHUTOFF

    node.set_image(url, checksum)
    _assert_deployed(node.deploy(), domain, data)

    node.undeploy()
    # Cleaning wiped the partition table and powered the domain off.
    assert _disk_head(domain, SECTOR)[510:] != MBR_SIGNATURE
    assert _state(domain) == libvirt.VIR_DOMAIN_SHUTOFF


@pytest.fixture
def no_network_boot(lab):
    """The lab network without DHCP boot options, for one test."""
    lab.network_boot(None)
    yield
    lab.network_boot('ipxe')


def test_libvirt_vmedia_deploy_without_network_boot(
        lab, image, flow, no_network_boot):
    # The network's DHCP offers no boot file: the ISO has the ramdisk.
    data, url, checksum = image
    node = flow()
    domain = node.domain
    node.enroll('libvirt', boot='libvirt-vmedia', automated_clean=False)
    node.manage()
    node.provide(timeout=120)
    node.set_image(url, checksum)

    _assert_deployed(node.deploy(), domain, data)
    # The ramdisk's ISO is ejected, live and in the saved definition.
    assert _cdrom_source(domain, 0) is None
    assert _cdrom_source(domain, libvirt.VIR_DOMAIN_XML_INACTIVE) is None

    node.undeploy(timeout=300)
    assert _state(domain) == libvirt.VIR_DOMAIN_SHUTOFF


def test_bad_checksum_fails_then_pxe_libvirt_iscsi_deploys(
        lab, image, flow):
    data, url, checksum = image
    node = flow()
    domain = node.domain
    # pxe_libvirt_iscsi is pxe_libvirt_agent under its historic name.
    # The agent retries an image that fails its checksum 9 times, 10 s
    # apart; once is enough here.
    created = node.enroll('pxe_libvirt_iscsi', boot='ipxe',
                          automated_clean=False, extra_driver_info={
                              'kernel_append_params': '%default% '
                              'ipa-image-download-connection-retries=0'})
    assert created['deploy_interface'] == 'direct'
    node.manage()
    node.provide(timeout=120)

    node.set_image(url, '0' * 64)
    node.deploy(goal='deploy failed')
    # The agent's error, as the node's history records it (Ironic 39 left
    # last_error empty here).
    assert 'Image failed to verify against checksum' in node.errors()[-1]
    # Nothing booted from the disk: the domain is not set to boot from it
    # (Ironic 39 leaves it running the agent after a failed deploy step).
    assert _boot_devices(domain)[0] != 'hd'
    assert _boot_devices(domain, 0)[0] != 'hd'

    node.set_image(url, checksum)
    _assert_deployed(node.deploy(), domain, data)


def test_ramdisk_that_never_calls_back_times_out(lab, flow):
    node = flow()
    domain = node.domain
    bogus_api = 'http://%s:9' % harness_deploy.HOST_ADDRESS
    lab.restart_ironic(SHORT_CALLBACK_TIMEOUT)
    try:
        # The agent boots, but looks Ironic up where nothing listens.
        # libvirt-vmedia puts kernel_append_params after Ironic's own
        # ipa-api-url, and the agent takes the last one (PXE puts them
        # first).
        node.enroll('libvirt', boot='libvirt-vmedia', automated_clean=False,
                    extra_driver_info={'kernel_append_params':
                                       '%%default%% ipa-api-url=%s'
                                       % bogus_api})
        node.manage()
        node.provide(timeout=120)
        node.set_image(*lab.add_image('never.raw', bytes(SECTOR)))
        failed = node.deploy(goal='deploy failed',
                             timeout=SHORT_CALLBACK_TIMEOUT + 180)
        errors = node.errors()
        node.wait_power_off()
    finally:
        # The restart below starts on a new database.
        node.delete()
        lab.restart_ironic(harness_deploy.CALLBACK_TIMEOUT)
    # Ironic's message names the node, not the cause: see deploy.rst.
    assert errors[-1] == ('Timeout reached while waiting for callback for '
                          'node %s' % failed['uuid'])
    assert _state(domain) == libvirt.VIR_DOMAIN_SHUTOFF
