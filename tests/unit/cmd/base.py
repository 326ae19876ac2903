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

"""Running the ``ironic-libvirt`` command line in-process.

``test:///default`` keeps its state while any connection to it is open:
each test holds one (``self.conn``) and sees what the command did.
"""

import io
import json

import libvirt

from ironic_libvirt.cmd import main
from tests.unit import base

URI = 'test:///default'


class CLITestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.conn = libvirt.open(URI)
        self.addCleanup(self.conn.close)
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()

    def run_cli(self, *args):
        return main.IronicLibvirtApp(stdout=self.stdout,
                                     stderr=self.stderr).run(list(args))

    def json_out(self, *args):
        self.assertEqual(0, self.run_cli(*args, '-f', 'json'),
                         self.stderr.getvalue())
        return json.loads(self.stdout.getvalue())
