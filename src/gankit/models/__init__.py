"""Networks, one file per family; importing this package registers them all."""

from gankit.models import progan

__all__ = ["progan"]
