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
