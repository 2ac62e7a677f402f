"""Pictures of plans and stores, to look before spending a night on an extraction.

* :func:`plan`: a slide's thumbnail with its tissue outline and a box per
  planned patch (a heat map above ``max_boxes``), coloured by label, with a
  title line and a legend;
* :func:`sheet`: a contact sheet of patches sampled from a store, captioned;
* :func:`store_boxes`: one source's thumbnail with the boxes of its stored patches.

Each returns a ``PIL.Image.Image`` (show it in a notebook, ``.save("x.png")``
it). Pillow is the ``preview`` extra (``pip install 'gigapatch[preview]'``),
imported only when a picture is drawn; without it these raise
:class:`gigapatch.errors.MissingExtraError`. Only low pyramid levels are read.
"""

from gigapatch.preview.plans import plan
from gigapatch.preview.stores import sheet, store_boxes

__all__ = ["plan", "sheet", "store_boxes"]
