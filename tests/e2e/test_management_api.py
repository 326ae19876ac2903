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

"""Health, vendor and indicators of a QEMU domain through Ironic's API.

python-ironicclient has no indicator commands, so those calls use the REST
API directly (``/v1/nodes/{node}/management/indicators``).
"""

import time
import urllib.parse

from ironic.common import health_states

INDICATORS = '/v1/nodes/%s/management/indicators'


def _wait_for_health(nodes, node, timeout=120):
    """The node's health once the power state sync has read it."""
    deadline = time.monotonic() + timeout
    while True:
        health = nodes.api(node)['health']
        if health is not None or time.monotonic() > deadline:
            return health
        time.sleep(0.5)


def test_vendor_health_and_indicators(nodes, qemu):
    domain = qemu.create()
    node = nodes.create('libvirt', qemu.driver_info(domain))['uuid']
    managed = nodes.manage(node)
    # Ironic detects and stores the vendor when the node becomes manageable.
    assert managed['properties'].get('vendor') == 'QEMU'
    assert (_wait_for_health(nodes, node)
            == health_states.HealthState.OK.value)

    api = nodes.ironic.request
    listed = {(i['component'], i['name']): i
              for i in api('GET', INDICATORS % node)['indicators']}
    assert set(listed) == {('system', 'led@system'), ('disk', 'led@disk')}
    assert listed[('system', 'led@system')]['states'] == [
        'off', 'on', 'blinking']
    one = INDICATORS % node + '/' + urllib.parse.quote('led@system')
    assert api('GET', one) == {'state': 'off'}
    api('PUT', one, {'state': 'blinking'})
    assert api('GET', one) == {'state': 'blinking'}
    # The state is the domain's, as the hypervisor keeps it.
    assert ('component="system" id="led" state="blinking"'
            in qemu.daemon.virsh('dumpxml', '--inactive', domain.name()))
