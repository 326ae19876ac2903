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

"""The DevStack plugin, sourced by bash against stub DevStack functions.

The stubs (iniset, iniget, pip_install, openstack, baremetal, ...) record
every call, one line each, to a file; the tests assert what was recorded.
"""

import os
import shlex
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
DEVSTACK = os.path.join(REPO, 'devstack')

# Two nodes as DevStack enrolls them: one ipmi node (the domain is the
# node's name) and one redfish node (the domain is the UUID in
# redfish_system_id).
IPMI_NODE = '11111111-1111-1111-1111-111111111111'
REDFISH_NODE = '22222222-2222-2222-2222-222222222222'
REDFISH_DOMAIN = 'a0f7e3b2-5c1d-4b7e-9f00-0123456789ab'

STUBS = r'''
declare -A INI
record() { printf '%s\n' "$*" >> "$CALLS"; }
is_service_enabled() { [[ "${SERVICES_ENABLED:-yes}" == yes ]]; }
echo_summary() { :; }
trueorfalse() {
    local default=$1 name=$2 value
    value=${!name:-$default}
    case "$value" in
        [Ff]alse|0|no|[Nn]o) echo False ;;
        *) echo True ;;
    esac
}
pip_install() { record pip_install "$@"; }
iniget() { record iniget "$@"; echo "${INI[$2/$3]:-}"; }
iniset() { record iniset "$@"; INI[$2/$3]=$4; }
baremetal() { record baremetal "$@"; }
openstack() {
    record openstack "$@"
    case "$*" in
        *"baremetal node list"*)
            echo "@IPMI@ node-0"
            echo "@REDFISH@ node-1"
            ;;
        *"baremetal node show @REDFISH@"*)
            echo "{'redfish_address': 'http://127.0.0.1:8000', " \
                 "'redfish_system_id': '/redfish/v1/Systems/@DOMAIN@'}"
            ;;
        *"baremetal node show @IPMI@"*)
            echo "{'ipmi_address': '127.0.0.1', 'ipmi_port': '6230'}"
            ;;
    esac
}
'''.replace('@IPMI@', IPMI_NODE).replace('@REDFISH@', REDFISH_NODE).replace(
    '@DOMAIN@', REDFISH_DOMAIN)


def run_plugin(tmp_path, phase, ini=None, env=None):
    """Source settings and plugin.sh for ``stack PHASE``; return the calls.

    :param ini: {'section/option': value} already in ironic.conf.
    :param env: extra environment variables.
    """
    calls = tmp_path / 'calls'
    calls.write_text('')
    preset = ''.join('INI[%s]=%s\n' % (shlex.quote(k), shlex.quote(v))
                     for k, v in (ini or {}).items())
    script = (STUBS + preset +
              'source %s\n' % shlex.quote(os.path.join(DEVSTACK, 'settings')) +
              'source %s stack %s\n' % (
                  shlex.quote(os.path.join(DEVSTACK, 'plugin.sh')), phase) +
              'for key in "${!INI[@]}"; do '
              'printf "%s=%s\\n" "$key" "${INI[$key]}"; done | sort '
              '> "$CALLS.ini"\n')
    environ = {'PATH': os.environ['PATH'], 'DEST': '/opt/stack',
               'IRONIC_CONF_FILE': '/etc/ironic/ironic.conf',
               'CALLS': str(calls)}
    environ.update(env or {})
    result = subprocess.run(['bash', '-c', script], env=environ,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    ini_after = dict(line.split('=', 1) for line in
                     (tmp_path / 'calls.ini').read_text().splitlines())
    return calls.read_text().splitlines(), ini_after


def test_install_pip_installs_the_source_dir(tmp_path):
    calls, _ = run_plugin(tmp_path, 'install')
    assert calls == ['pip_install -e /opt/stack/ironic-libvirt']


def test_install_honours_ironic_libvirt_dir(tmp_path):
    calls, _ = run_plugin(tmp_path, 'install',
                          env={'IRONIC_LIBVIRT_DIR': '/src/il'})
    assert calls == ['pip_install -e /src/il']


def test_post_config_appends_libvirt_and_sets_default_uri(tmp_path):
    calls, ini = run_plugin(tmp_path, 'post-config', ini={
        'DEFAULT/enabled_hardware_types': 'ipmi,redfish',
        'DEFAULT/enabled_power_interfaces': 'ipmitool,redfish',
        'DEFAULT/enabled_management_interfaces': 'ipmitool,redfish'})
    conf = '/etc/ironic/ironic.conf'
    assert [c for c in calls if c.startswith('iniset')] == [
        'iniset %s DEFAULT enabled_hardware_types ipmi,redfish,libvirt'
        % conf,
        'iniset %s DEFAULT enabled_power_interfaces ipmitool,redfish,libvirt'
        % conf,
        'iniset %s DEFAULT enabled_management_interfaces '
        'ipmitool,redfish,libvirt' % conf,
        'iniset %s libvirt default_uri qemu:///system' % conf,
    ]
    assert ini['DEFAULT/enabled_hardware_types'] == 'ipmi,redfish,libvirt'


def test_post_config_on_empty_options_and_custom_uri(tmp_path):
    _, ini = run_plugin(tmp_path, 'post-config', env={
        'IRONIC_LIBVIRT_URI': 'qemu+ssh://stack@hv/system'})
    assert ini == {
        'DEFAULT/enabled_hardware_types': 'libvirt',
        'DEFAULT/enabled_management_interfaces': 'libvirt',
        'DEFAULT/enabled_power_interfaces': 'libvirt',
        'libvirt/default_uri': 'qemu+ssh://stack@hv/system'}


def test_post_config_is_idempotent(tmp_path):
    calls, ini = run_plugin(tmp_path, 'post-config', ini={
        'DEFAULT/enabled_hardware_types': 'libvirt,ipmi',
        'DEFAULT/enabled_power_interfaces': 'ipmitool,libvirt',
        'DEFAULT/enabled_management_interfaces': 'libvirt'})
    assert [c.split()[2:4] for c in calls if c.startswith('iniset')] == [
        ['libvirt', 'default_uri']]
    assert ini['DEFAULT/enabled_hardware_types'] == 'libvirt,ipmi'


def _node_sets(calls):
    return [c for c in calls if ' baremetal node set ' in c]


def test_extra_moves_nodes_to_libvirt(tmp_path):
    calls, _ = run_plugin(tmp_path, 'extra')
    resets = ('--reset-power-interface --reset-management-interface '
              '--reset-console-interface --reset-vendor-interface '
              '--reset-bios-interface --reset-raid-interface '
              '--reset-inspect-interface --reset-firmware-interface')
    prefix = 'openstack --os-cloud devstack-system-admin baremetal node set'
    assert _node_sets(calls) == [
        '%s %s --driver libvirt --driver-info libvirt_uri=qemu:///system '
        '--driver-info libvirt_domain=node-0 %s'
        % (prefix, IPMI_NODE, resets),
        '%s %s --driver libvirt --driver-info libvirt_uri=qemu:///system '
        '--driver-info libvirt_domain=%s %s'
        % (prefix, REDFISH_NODE, REDFISH_DOMAIN, resets),
    ]
    assert not [c for c in calls if c.startswith(('iniset', 'pip_install'))]


def test_extra_uses_ironic_os_cloud(tmp_path):
    calls, _ = run_plugin(tmp_path, 'extra',
                          env={'IRONIC_OS_CLOUD': 'my-cloud'})
    assert calls and all(c.startswith('openstack --os-cloud my-cloud ')
                         for c in calls)


def test_extra_can_leave_nodes_alone(tmp_path):
    calls, _ = run_plugin(tmp_path, 'extra',
                          env={'IRONIC_LIBVIRT_MIGRATE_NODES': 'False'})
    assert calls == []


@pytest.mark.parametrize('phase', ['install', 'post-config', 'extra'])
def test_nothing_without_ironic(tmp_path, phase):
    calls, ini = run_plugin(tmp_path, phase,
                            env={'SERVICES_ENABLED': 'no'})
    assert calls == [] and ini == {}


def test_shellcheck():
    if not shutil.which('shellcheck'):
        pytest.skip('shellcheck is not installed (bindep.txt [test])')
    result = subprocess.run(
        ['shellcheck', '-s', 'bash', 'plugin.sh', 'settings'],
        cwd=DEVSTACK, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
