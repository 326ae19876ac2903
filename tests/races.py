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

"""Racing edits of one domain, for the concurrency tests."""

import threading


def race_edits(domain, read_definition, rounds):
    """Race a boot device edit against a firmware edit, round after round.

    Both edits of a round start together and change different elements to
    values new in that round; a lost update leaves one of them unchanged.

    :returns: the rounds that lost an update, with what was seen.
    """
    devices = ['hd', 'network', 'cdrom']
    lost = []
    for r in range(rounds):
        barrier = threading.Barrier(2)
        device, mode = devices[r % 3], ('uefi', 'bios')[r % 2]

        def run(edit):
            barrier.wait()
            edit()

        threads = [
            threading.Thread(target=run, args=(
                lambda: domain.set_boot_device(device),)),
            threading.Thread(target=run, args=(
                lambda: domain.set_firmware(mode),))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        root = read_definition()
        first = root.find('os/boot').get('dev')
        firmware = 'uefi' if root.find('os').get('firmware') else 'bios'
        if (first, firmware) != (device, mode):
            lost.append((r, first, firmware))
    return lost
