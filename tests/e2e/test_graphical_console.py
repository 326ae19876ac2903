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

"""The graphical console in a real browser, through a real Ironic.

``baremetal node console enable`` on a node with ``libvirt-graphical``,
``console show`` gives a URL of ``ironic-novncproxy``, and headless
Chromium opening it shows the domain's screen: the firmware's text on a
domain that boots nothing. The screenshot is kept in
``$IRONIC_LIBVIRT_ARTIFACTS`` (default ``tests/e2e/artifacts/``, ignored by
git) as ``graphical-console.png``.
"""

import os
import pathlib
import shutil
import time
import urllib.parse
import xml.etree.ElementTree as ET

import libvirt
from PIL import Image
import pytest

from tests.harness import browser
from tests.harness import ironic as ironic_harness
from tests.harness import process

ARTIFACTS = pathlib.Path(os.environ.get(
    'IRONIC_LIBVIRT_ARTIFACTS',
    pathlib.Path(__file__).parent / 'artifacts'))
# vnc_lite.html says "Connected to <name>" once the screen is drawn; the
# firmware has drawn some text by then (it is up before the console is
# shown), and a second later for sure.
READY_JS = """(() => {
    const s = document.getElementById('status');
    if (!s || !s.textContent.startsWith('Connected')) {
        window.readySince = undefined;
        return false;
    }
    window.readySince = window.readySince || Date.now();
    return Date.now() - window.readySince > 2000;
})()"""


def _stage(start, what):
    print('[%6.1fs] %s' % (time.monotonic() - start, what), flush=True)


@pytest.fixture(scope='module')
def novncproxy(libvirt_ironic):
    url = urllib.parse.urlsplit(libvirt_ironic.config['vnc']['public_url'])
    with ironic_harness.NoVNCProxy(libvirt_ironic, url.port) as proxy:
        yield proxy


def test_screen_in_a_browser(nodes, qemu, novncproxy, tmp_path):
    start = time.monotonic()
    domain = qemu.create()
    node = nodes.create('libvirt', qemu.driver_info(domain))['uuid']
    nodes.cli('node', 'set', node, '--console-interface',
              'libvirt-graphical', json=False)
    nodes.manage(node)

    # Enabled while off: the definition gets the VNC server, the next
    # power on starts it with the password.
    with nodes.console_enabled(node) as info:
        _stage(start, 'console enabled: %s' % info['type'])
        nodes.power(node, 'on', cli=True)
        _stage(start, 'powered on')
        assert info['type'] == 'vnc'
        assert info['url'].startswith(
            nodes.ironic.config['vnc']['public_url'] + '?path=')
        # The password is nowhere in what the API shows.
        password = _live_password(domain)
        assert password and password not in str(nodes.api(node))
        assert password not in str(nodes.console_shown(node))

        png = tmp_path / 'graphical-console.png'
        browser.screenshot(info['url'], png, READY_JS)
        _stage(start, 'screenshot taken')
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(png, ARTIFACTS / png.name)
        _assert_guest_text(png)
        for log in (nodes.ironic.log_text(), process.tail(
                novncproxy.log_path, chars=10 ** 7)):
            assert password not in log
    _stage(start, 'console disabled')


def _live_password(domain):
    xml = domain.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE)
    return ET.fromstring(xml).find("devices/graphics[@type='vnc']").get(
        'passwd')


def _assert_guest_text(png):
    """A black screen with light text on it, wherever noVNC placed it.

    noVNC's page is grey (40) with a blue status bar: a page that failed
    to connect has no black pixels at all, and an empty screen no text.
    """
    with Image.open(png) as image:
        grey = image.convert('L')
    box = grey.point(lambda p: 255 if p < 16 else 0).getbbox()
    assert box is not None, 'no black guest screen in the page'
    width, height = box[2] - box[0], box[3] - box[1]
    # At least the 640x400 of a text mode screen, scaled down at worst
    # to half.
    assert width >= 320 and height >= 200, box
    # Pixels brighter than 150: the text's.
    text = sum(grey.crop(box).histogram()[151:])
    assert text > 200, 'no text on the guest screen'
