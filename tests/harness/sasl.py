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

"""A private SASL configuration and user database for libvirtd.

Cyrus SASL reads ``libvirt.conf`` from ``$SASL_CONF_PATH`` when that is
set, which libvirtd honours, so nothing under /etc/sasl2 is touched: the
harness starts libvirtd with ``env`` below.
"""

import os
import pathlib
import subprocess

MECH_LIST = 'digest-md5 scram-sha-256'


class Sasl:
    """A SASL config dir (``conf_dir``) with a sasldb (``db_path``)."""

    def __init__(self, base_dir):
        self.conf_dir = pathlib.Path(base_dir)
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.conf_dir / 'passwd.db'
        (self.conf_dir / 'libvirt.conf').write_text(
            'mech_list: %s\nsasldb_path: %s\n' % (MECH_LIST, self.db_path))
        self.users = {}

    @property
    def env(self):
        """Environment variables making a process use this config."""
        return {'SASL_CONF_PATH': str(self.conf_dir)}

    def add_user(self, username, password):
        """Create (or update) a user that may authenticate to libvirt."""
        subprocess.run(
            ['saslpasswd2', '-p', '-c', '-a', 'libvirt', '-f',
             str(self.db_path), username],
            input=password, text=True, check=True, capture_output=True,
            env=dict(os.environ, **self.env))
        self.users[username] = password
