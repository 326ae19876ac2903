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

"""``ironic-libvirt check`` on libvirt's test driver."""

import json

from tests.unit.cmd import base

URI = base.URI


class CheckTestCase(base.CLITestCase):

    def test_check_success(self):
        rows = self.json_out('check', '--driver-info', json.dumps(
            {'libvirt_uri': URI}), '--mac', 'AA:BB:CC:DD:EE:FF')
        self.assertEqual(
            ['read driver_info', 'parse driver_info', 'URI policy',
             'connect', 'authenticate', 'find domain', 'power state'],
            [r['Step'] for r in rows])
        self.assertEqual({'ok'}, {r['Result'] for r in rows})
        self.assertEqual('power on', rows[-1]['Detail'])

    def test_check_refused_uri(self):
        self.assertEqual(1, self.run_cli(
            'check', '-f', 'json', '--driver-info', json.dumps(
                {'libvirt_uri': 'qemu+ssh://h/system?command=/bin/sh'})))
        rows = json.loads(self.stdout.getvalue())
        self.assertEqual(('URI policy', 'FAILED'),
                         (rows[-1]['Step'], rows[-1]['Result']))
        self.assertIn('command', rows[-1]['Detail'])

    def test_check_unknown_domain(self):
        self.assertEqual(1, self.run_cli(
            'check', '-f', 'json', '--driver-info', json.dumps(
                {'libvirt_uri': URI, 'libvirt_domain': 'nope'})))
        rows = json.loads(self.stdout.getvalue())
        self.assertEqual(('find domain', 'FAILED'),
                         (rows[-1]['Step'], rows[-1]['Result']))
        self.assertIn('Fix: check libvirt_domain', rows[-1]['Detail'])

    def test_check_bad_json(self):
        self.assertEqual(1, self.run_cli('check', '-f', 'json',
                                         '--driver-info', '{nope'))
        self.assertIn('FAILED', self.stdout.getvalue())
