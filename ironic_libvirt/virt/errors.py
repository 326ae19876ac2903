"""Exceptions of the libvirt core.

They carry plain messages and never credentials; the Ironic adapters in
:mod:`ironic_libvirt.drivers` translate them into Ironic exceptions.
"""


class LibvirtCoreError(Exception):
    """Base class of the core's exceptions."""


class UnsafeURI(LibvirtCoreError):
    """A libvirt URI is refused by the URI policy.

    :ivar parameter: the part of the URI that is refused (e.g. ``command``).
    """

    def __init__(self, message, parameter=None):
        super().__init__(message)
        self.parameter = parameter


class ConnectionFailed(LibvirtCoreError):
    """The hypervisor cannot be reached or the connection broke."""


class AuthFailed(ConnectionFailed):
    """The hypervisor refused the credentials."""


class DomainNotFound(LibvirtCoreError):
    """No domain matches the name, UUID or MAC addresses given."""


class AmbiguousDomain(LibvirtCoreError):
    """Several domains match the MAC addresses given.

    :ivar candidates: names of the matching domains.
    """

    def __init__(self, message, candidates):
        super().__init__(message)
        self.candidates = candidates


class InvalidDomainXML(LibvirtCoreError):
    """The domain's XML lacks what an operation needs."""


class OperationFailed(LibvirtCoreError):
    """libvirt refused or failed an operation on a domain."""
