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

"""Headless Chromium (Debian package ``chromium``) taking a screenshot.

Chromium is driven over its DevTools protocol on a pipe
(``--remote-debugging-pipe``: JSON messages ending in NUL on file
descriptors 3 and 4), so that the screenshot waits for the page to say it
is ready, in real time. Every run has a new, empty profile and the
features that phone home switched off, and host names other than
127.0.0.1 do not resolve, so that no traffic leaves loopback.
"""

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time

from tests.harness import system

CHROMIUM = 'chromium'
_FLAGS = (
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
    '--no-first-run', '--no-default-browser-check',
    '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--disable-extensions', '--disable-default-apps',
    '--no-proxy-server', '--hide-scrollbars',
    '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
    '--remote-debugging-pipe',
)


class BrowserError(system.HarnessError):
    """Chromium is missing, failed, or the page never became ready."""


class _DevTools:
    """Commands and their results over Chromium's debugging pipe."""

    def __init__(self, to_browser, from_browser):
        self._out = to_browser
        self._in = from_browser
        self._buffer = b''
        self._next_id = 0

    def call(self, method, session=None, **params):
        self._next_id += 1
        message = {'id': self._next_id, 'method': method, 'params': params}
        if session is not None:
            message['sessionId'] = session
        os.write(self._out, json.dumps(message).encode() + b'\0')
        while True:
            reply = self._read()
            if reply.get('id') == self._next_id:
                if 'error' in reply:
                    raise BrowserError('%s: %s' % (method, reply['error']))
                return reply['result']

    def _read(self):
        while b'\0' not in self._buffer:
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise BrowserError('chromium closed its debugging pipe')
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b'\0', 1)
        return json.loads(message)


def screenshot(url, path, ready_js, width=1024, height=768, timeout=90):
    """Open ``url``; when ``ready_js`` is true, save a PNG to ``path``.

    :param ready_js: a JavaScript expression, polled until it is true.
    :param timeout: seconds for the page to become ready.
    :raises: BrowserError if Chromium is missing or fails, or the page is
        not ready in time.
    """
    binary = shutil.which(CHROMIUM)
    if binary is None:
        raise BrowserError('no %s: install the Debian package chromium '
                           '(bindep.txt)' % CHROMIUM)
    commands_r, commands_w = os.pipe()
    replies_r, replies_w = os.pipe()

    def pipes_as_3_and_4():
        os.dup2(commands_r, 3)
        os.dup2(replies_w, 4)

    with tempfile.TemporaryDirectory(prefix='chromium-') as profile:
        proc = subprocess.Popen(
            [binary, *_FLAGS, '--user-data-dir=%s' % profile,
             '--window-size=%d,%d' % (width, height), 'about:blank'],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, close_fds=False,
            preexec_fn=pipes_as_3_and_4)
        os.close(commands_r)
        os.close(replies_w)
        try:
            _capture(_DevTools(commands_w, replies_r), url, path, ready_js,
                     width, height, timeout)
        finally:
            os.close(commands_w)
            os.close(replies_r)
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _capture(devtools, url, path, ready_js, width, height, timeout):
    target = devtools.call('Target.createTarget', url=url, width=width,
                           height=height, newWindow=True)['targetId']
    session = devtools.call('Target.attachToTarget', targetId=target,
                            flatten=True)['sessionId']
    deadline = time.monotonic() + timeout
    while not devtools.call('Runtime.evaluate', session,
                            expression=ready_js,
                            returnByValue=True)['result'].get('value'):
        if time.monotonic() > deadline:
            raise BrowserError('the page %s was not ready after %ss'
                               % (url, timeout))
        time.sleep(0.5)
    data = devtools.call('Page.captureScreenshot', session,
                         format='png')['data']
    with open(path, 'wb') as png:
        png.write(base64.b64decode(data))
