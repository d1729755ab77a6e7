"""Sample data without GDAL: a COG writer and a Sentinel-2-like scene generator.

``write_cog`` writes tiled, compressed GeoTIFFs in GDAL's COG layout (all IFDs first);
``make_sentinel2_like`` writes a small multi-date, multi-band collection of them.
"""

from rasteret.samples.cog import reduce_level, write_cog
from rasteret.samples.sentinel2 import make_sentinel2_like
from rasteret.samples.tiffio import WrittenImage, WrittenTiff

__all__ = ["WrittenImage", "WrittenTiff", "make_sentinel2_like", "reduce_level", "write_cog"]
