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

"""The lab network's XML and its life cycle on libvirt's test driver.

The functional proof (a real bridge, dnsmasq leasing to a QEMU guest that
then deploys) is tests/e2e/test_deploy.py.
"""

import unittest
import xml.etree.ElementTree as ET

import libvirt

from ironic_libvirt.lab import network


def _parse(lab):
    return ET.fromstring(lab.xml())


class NetworkXMLTestCase(unittest.TestCase):

    def test_ipxe_offers_boot_ipxe_over_http(self):
        lab = network.LabNetwork(name='lab', bridge='labbr0',
                                 cidr='10.9.0.1/24', boot='ipxe',
                                 http_url='http://10.9.0.1:8080/')
        root = _parse(lab)
        self.assertEqual('lab', root.findtext('name'))
        self.assertEqual('labbr0', root.find('bridge').get('name'))
        # Isolated: no <forward>, so libvirt adds no NAT.
        self.assertIsNone(root.find('forward'))
        ip = root.find('ip')
        self.assertEqual(('10.9.0.1', '24'),
                         (ip.get('address'), ip.get('prefix')))
        self.assertEqual({'start': '10.9.0.128', 'end': '10.9.0.254'},
                         ip.find('dhcp/range').attrib)
        self.assertEqual({'file': 'http://10.9.0.1:8080/boot.ipxe',
                          'server': '10.9.0.1'},
                         ip.find('dhcp/bootp').attrib)
        self.assertIsNone(ip.find('tftp'))
        self.assertEqual('10.9.0.1', lab.host_address)

    def test_pxe_serves_tftp_root_and_bootfile(self):
        lab = network.LabNetwork(cidr='192.168.50.1/28', boot='pxe',
                                 tftp_root='/srv/tftp"boot')
        ip = _parse(lab).find('ip')
        self.assertEqual('/srv/tftp"boot', ip.find('tftp').get('root'))
        self.assertEqual('pxelinux.0', ip.find('dhcp/bootp').get('file'))
        self.assertEqual({'start': '192.168.50.8', 'end': '192.168.50.14'},
                         ip.find('dhcp/range').attrib)

    def test_no_boot_is_plain_dhcp(self):
        ip = _parse(network.LabNetwork()).find('ip')
        self.assertIsNone(ip.find('dhcp/bootp'))
        self.assertIsNone(ip.find('tftp'))
        self.assertEqual('10.250.0.1', ip.get('address'))

    def test_interface_xml(self):
        lab = network.LabNetwork(name="o'neil")
        iface = ET.fromstring(lab.interface_xml('52:54:00:00:00:01'))
        self.assertEqual('network', iface.get('type'))
        self.assertEqual("o'neil", iface.find('source').get('network'))
        self.assertEqual('52:54:00:00:00:01',
                         iface.find('mac').get('address'))
        self.assertEqual('virtio', iface.find('model').get('type'))

    def test_bad_parameters_name_the_fix(self):
        cases = [
            (dict(boot='http'), 'boot must be one of'),
            (dict(boot='ipxe'), 'http_url'),
            (dict(boot='pxe'), 'tftp_root'),
            (dict(bridge='a-very-long-bridge'), '1 to 15'),
            (dict(cidr='10.0.0.1'), 'at least 8 addresses'),
            (dict(cidr='10.0.0.0/24'), 'host address'),
            (dict(cidr='banana/24'), 'not an IPv4 address'),
        ]
        for kwargs, message in cases:
            with self.subTest(**kwargs):
                with self.assertRaisesRegex(network.LabNetworkError,
                                            message):
                    network.LabNetwork(**kwargs)


class NetworkLifeCycleTestCase(unittest.TestCase):

    def setUp(self):
        super().setUp()
        self.conn = libvirt.open('test:///default')
        self.addCleanup(self.conn.close)
        self.lab = network.LabNetwork(name='unit-lab', bridge='unitlab0')
        self.addCleanup(self.lab.remove, self.conn)

    def test_create_replaces_and_remove_is_idempotent(self):
        self.lab.create(self.conn)
        ipxe = network.LabNetwork(name='unit-lab', bridge='unitlab0',
                                  boot='ipxe', http_url='http://h:1')
        created = ipxe.create(self.conn)
        self.assertTrue(created.isActive())
        self.assertIn('http://h:1/boot.ipxe', created.XMLDesc())
        self.assertFalse(created.autostart())

        ipxe.remove(self.conn)
        self.assertNotIn('unit-lab', self.conn.listNetworks()
                         + self.conn.listDefinedNetworks())
        ipxe.remove(self.conn)

    def test_refused_network_names_itself(self):
        refused = network.LabNetwork(name='unit/lab', bridge='unitlab1')
        with self.assertRaisesRegex(network.LabNetworkError,
                                    'network unit/lab .*unitlab1.*/'):
            refused.create(self.conn)
