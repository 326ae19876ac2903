# Ironic's test package selects oslo.service's threading backend; it must be
# imported before anything imports ironic.conductor, which would select
# eventlet.
import ironic.tests.unit  # noqa: F401

# Import the drivers now, not inside a test: importing ironic.drivers runs a
# subprocess (zeroconf's ldconfig probe), which Ironic's test base forbids.
import ironic_libvirt.drivers.hardware  # noqa: F401,E402
