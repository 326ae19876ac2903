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

"""``ironic-libvirt create-fleet`` and ``domains`` on real QEMU: clones
that boot."""

import io
import json
import xml.etree.ElementTree as ET

import libvirt
import pytest

from ironic_libvirt.cmd import main


def _cli_json(*args):
    stdout, stderr = io.StringIO(), io.StringIO()
    rc = main.IronicLibvirtApp(stdout=stdout, stderr=stderr).run(
        list(args) + ['-f', 'json'])
    assert rc == 0, stderr.getvalue()
    return json.loads(stdout.getvalue())


@pytest.mark.parametrize('strategy', ['full', 'quick'])
def test_create_fleet_clones_that_boot(clean_libvirtd, strategy):
    uri = clean_libvirtd.uri_unix
    pool = ['--pool', 'fleet-%s' % strategy, '--pool-path',
            '/var/lib/libvirt/images/fleet-%s' % strategy]
    base_rows = _cli_json('create-fleet', '--uri', uri, '--count', '1',
                          '--prefix', 'base-%s' % strategy, '--memory-mib',
                          '32', '--disk-gib', '1', *pool)
    rows = _cli_json('create-fleet', '--uri', uri, '--count', '2',
                     '--prefix', 'clone-%s' % strategy, '--base',
                     base_rows[0]['Name'], '--clone-strategy', strategy,
                     *pool)
    assert [r['Name'] for r in rows] == ['clone-%s-0' % strategy,
                                         'clone-%s-1' % strategy]
    conn = libvirt.open(uri)
    try:
        dom = conn.lookupByName(rows[1]['Name'])
        source = ET.fromstring(dom.XMLDesc(0)).find(
            "devices/disk[@device='disk']/source").get('file')
        volume = conn.storageVolLookupByPath(source)
        backing = ET.fromstring(volume.XMLDesc(0)).find('backingStore')
        assert (backing is not None) == (strategy == 'quick')
        assert source.endswith('clone-%s-1.qcow2' % strategy)
        dom.create()
        assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        listed = {r['Name']: r for r in _cli_json('domains', '--uri', uri)}
        assert listed[rows[1]['Name']]['State'] == 'running'
        assert listed[rows[1]['Name']]['MAC addresses'] == rows[1][
            'MAC addresses']
    finally:
        conn.close()
