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

"""The ``ironic-libvirt`` command with a real standalone Ironic.

``enroll-file`` writes what ``baremetal create`` enrolls, and ``check``
passes on what it wrote, on real QEMU domains reached over qemu+tcp with SASL.
"""

import json
import os
import subprocess
import sys

import yaml


def _ironic_libvirt(*args, env=None):
    """Run ``ironic-libvirt ARGS -f json``; return the parsed output."""
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), 'ironic-libvirt'),
         *args, '-f', 'json'], capture_output=True, text=True, env=env,
        timeout=60)
    return result.returncode, json.loads(result.stdout or 'null'), (
        result.stderr)


def test_enroll_file_create_check_power_on(libvirt_ironic, nodes, qemu,
                                           tmp_path):
    domains = [qemu.create(), qemu.create()]
    names = [d.name() for d in domains]
    path = tmp_path / 'nodes.yaml'
    rc, rows, err = _ironic_libvirt(
        'enroll-file', '--uri', qemu.daemon.uri_tcp, '--sasl-username',
        qemu.daemon.sasl_username, '--domains', *names, '-o', str(path),
        env=dict(os.environ, IRONIC_LIBVIRT_SASL_PASSWORD=(
            qemu.daemon.sasl_password)))
    assert rc == 0, err
    assert rows == [{'Name': d.name(), 'MAC addresses': d.mac}
                    for d in domains]
    assert path.stat().st_mode & 0o777 == 0o600

    nodes.cli('create', path, json=False)
    for domain in domains:
        node = nodes.cli('node', 'show', domain.name())
        nodes.created.append(node['uuid'])
        assert node['driver'] == 'libvirt'
        assert node['properties']['cpu_arch'] == 'x86_64'
        ports = nodes.cli('port', 'list', '--node', node['uuid'])
        assert [p['address'] for p in ports] == [domain.mac]
        results = nodes.validate(node['uuid'])
        for interface in ('power', 'management'):
            assert results[interface][0] is True, (interface, results)
        nodes.manage(node['uuid'])
        nodes.power(node['uuid'], 'on', cli=True)
        assert qemu.state(domain) == 'running'

    info_file = tmp_path / 'driver_info.json'
    info_file.write_text(json.dumps(
        yaml.safe_load(path.read_text())['nodes'][0]['driver_info']))
    rc, rows, err = _ironic_libvirt(
        'check', '--driver-info', '@%s' % info_file,
        '--config-file', libvirt_ironic.config_path)
    assert rc == 0, err
    assert [r['Step'] for r in rows] == [
        'read driver_info', 'parse driver_info', 'URI policy', 'connect',
        'authenticate', 'find domain', 'power state']
    assert {r['Result'] for r in rows} == {'ok'}, rows
