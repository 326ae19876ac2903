# Ironic's conductor runs on native threads (oslo.service's threading
# backend). The backend is chosen once per process, by whatever imports
# ironic.conductor first, and eventlet is the default: choose it here,
# before any test package imports Ironic.
from oslo_service import backend

backend.init_backend(backend.BackendType.THREADING)
