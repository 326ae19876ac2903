#!/bin/bash
# DevStack plugin of ironic-libvirt: installs the package, enables the
# libvirt hardware type and interfaces in ironic.conf, and moves the
# virtual nodes DevStack enrolled to driver libvirt.

IRONIC_LIBVIRT_CONF_FILE=${IRONIC_CONF_FILE:-/etc/ironic/ironic.conf}

function install_ironic_libvirt {
    pip_install -e "$IRONIC_LIBVIRT_DIR"
}

# Append a value to a comma-separated option unless it is there already.
function _ironic_libvirt_append {
    local section=$1 option=$2 value=$3 current
    current=$(iniget "$IRONIC_LIBVIRT_CONF_FILE" "$section" "$option")
    if [[ ",$current," == *",$value,"* ]]; then
        return 0
    fi
    iniset "$IRONIC_LIBVIRT_CONF_FILE" "$section" "$option" \
        "${current:+$current,}$value"
}

function configure_ironic_libvirt {
    _ironic_libvirt_append DEFAULT enabled_hardware_types libvirt
    _ironic_libvirt_append DEFAULT enabled_power_interfaces libvirt
    _ironic_libvirt_append DEFAULT enabled_management_interfaces libvirt
    iniset "$IRONIC_LIBVIRT_CONF_FILE" libvirt default_uri \
        "$IRONIC_LIBVIRT_URI"
}

function _ironic_libvirt_baremetal {
    openstack --os-cloud "$IRONIC_LIBVIRT_OS_CLOUD" baremetal "$@"
}

# The domain of a node DevStack enrolled: redfish nodes name it by UUID in
# redfish_system_id (/redfish/v1/Systems/UUID); DevStack names every node
# after its VM otherwise.
function _ironic_libvirt_domain_of {
    local node=$1 name=$2 system_id
    system_id=$(_ironic_libvirt_baremetal node show "$node" -f value \
        -c driver_info | sed -n \
        "s|.*'redfish_system_id': '/redfish/v1/Systems/\([^']*\)'.*|\1|p")
    echo "${system_id:-$name}"
}

function migrate_ironic_libvirt_nodes {
    local uuid name domain
    while read -r uuid name; do
        [[ -n "$uuid" ]] || continue
        domain=$(_ironic_libvirt_domain_of "$uuid" "$name")
        echo "ironic-libvirt: node $uuid -> driver libvirt, domain $domain"
        _ironic_libvirt_baremetal node set "$uuid" --driver libvirt \
            --driver-info libvirt_uri="$IRONIC_LIBVIRT_URI" \
            --driver-info libvirt_domain="$domain" \
            --reset-power-interface --reset-management-interface \
            --reset-console-interface --reset-vendor-interface \
            --reset-bios-interface --reset-raid-interface \
            --reset-inspect-interface --reset-firmware-interface
    done < <(_ironic_libvirt_baremetal node list -f value -c UUID -c Name)
}

if is_service_enabled ir-api ir-cond; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing ironic-libvirt"
        install_ironic_libvirt
    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring ironic-libvirt"
        configure_ironic_libvirt
    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        if [[ "$IRONIC_LIBVIRT_MIGRATE_NODES" == "True" ]]; then
            echo_summary "Moving DevStack's nodes to driver libvirt"
            migrate_ironic_libvirt_nodes
        fi
    fi
fi
