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

    def test_check_bad_json_is_a_usage_error(self):
        message = self.usage_error('check', '--driver-info', '{nope')
        self.assertIn('argument --driver-info: not JSON', message)
        self.assertEqual('', self.stdout.getvalue())

    def test_check_driver_info_must_be_an_object(self):
        message = self.usage_error('check', '--driver-info', '[1]')
        self.assertIn('driver_info must be a JSON object', message)

    def test_check_unreadable_driver_info_file(self):
        message = self.usage_error('check', '--driver-info', '@/nonexistent')
        self.assertIn('cannot read /nonexistent: No such file', message)

    def test_check_missing_config_file(self):
        message = self.usage_error('check', '--driver-info', '{}',
                                   '--config-file', '/nonexistent.conf')
        self.assertIn('--config-file', message)
        self.assertIn('/nonexistent.conf', message)

    def test_check_never_shows_the_sasl_password(self):
        self.assertEqual(1, self.run_cli(
            'check', '-f', 'json', '--driver-info', json.dumps(
                {'libvirt_uri': 'qemu+tcp://127.0.0.1:1/system',
                 'libvirt_domain': 'x', 'sasl_username': 'ironic',
                 'sasl_password': 'pw-s3cret'})))
        rows = json.loads(self.stdout.getvalue())
        self.assertEqual('libvirt_domain, libvirt_uri, sasl_username',
                         rows[0]['Detail'])
        self.assertEqual(('connect', 'FAILED'),
                         (rows[-1]['Step'], rows[-1]['Result']))
        self.assertNotIn('pw-s3cret', self.stdout.getvalue())
        self.assertNotIn('pw-s3cret', self.stderr.getvalue())
