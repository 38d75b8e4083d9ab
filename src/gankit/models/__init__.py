"""Networks, one file per family; importing this package registers them all."""

from gankit.models import cyclegan, dcgan, mlp, progan, resnet, stylegan, stylegan2

__all__ = ["cyclegan", "dcgan", "mlp", "progan", "resnet", "stylegan", "stylegan2"]
