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

"""Configuration options of the ``[libvirt]`` group."""

from oslo_config import cfg

GROUP = 'libvirt'

opts = [
    cfg.StrOpt('default_uri',
               default='qemu:///system',
               help='libvirt URI used for nodes whose driver_info has no '
                    'libvirt_uri.'),
    cfg.BoolOpt('allow_test_driver',
                default=False,
                help="Admit URIs of libvirt's embedded test driver "
                     "(test:///default, test:///PATH.xml). For development "
                     "and demonstrations only: a test:/// URI reads a file "
                     "of the caller's choosing."),
    cfg.ListOpt('allowed_path_dirs',
                default=[],
                help='Directories that driver_info ssh_key_filename and '
                     'tls_pki_path must lie in. Empty admits any absolute '
                     'path readable by the conductor. Set it when people '
                     'who may not read the conductor host can write '
                     'driver_info.'),
    cfg.IntOpt('connection_cache_size',
               default=64,
               min=1,
               help='How many hypervisor connections (one per URI and '
                    'credentials) the conductor keeps open. The least '
                    'recently used one is closed when the cache is full.'),
    cfg.IntOpt('keepalive_interval',
               default=5,
               min=0,
               help='Seconds between libvirt keepalive probes on remote '
                    'connections; 0 disables keepalive. A peer that misses '
                    'keepalive_count probes in a row is considered dead, '
                    'which bounds how long a call to a hung hypervisor '
                    'blocks to about interval * (count + 1) seconds.'),
    cfg.IntOpt('keepalive_count',
               default=3,
               min=1,
               help='Unanswered keepalive probes after which a connection '
                    'is closed.'),
    cfg.FloatOpt('open_timeout',
                 default=30.0,
                 min=0.1,
                 help='Seconds to wait for a connection to a hypervisor to '
                      'open before the call fails.'),
    cfg.StrOpt('media_pool',
               default='ironic-libvirt-media',
               help='Storage pool, on each hypervisor, that virtual media '
                    'images are uploaded into (one volume per domain and '
                    'drive, deleted when the medium is ejected). When the '
                    'pool does not exist, a directory pool of this name '
                    'is created at media_pool_path and started.'),
    cfg.StrOpt('media_pool_path',
               default='/var/lib/libvirt/images/ironic-libvirt-media',
               help='Directory, on the hypervisor, of the media_pool '
                    'created when it is missing.'),
    cfg.IPOpt('vnc_listen_address',
              default='127.0.0.1',
              help='Address the VNC server of a domain listens on, on its '
                   'hypervisor, when the libvirt-graphical console is '
                   'enabled. The conductor connects to it (with the '
                   'per-enable password) and relays it to '
                   'ironic-novncproxy. The default suits a hypervisor on '
                   'the conductor\'s host; for a remote hypervisor, set an '
                   'address of the hypervisor that only the conductors can '
                   'reach.'),
]

cfg.CONF.register_opts(opts, group=GROUP)


def list_opts():
    """Options for oslo-config-generator.

    :returns: a list of (group, options) tuples.
    """
    return [(GROUP, opts)]
