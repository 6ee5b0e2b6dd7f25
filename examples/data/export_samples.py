#!/usr/bin/env python3
"""Exports the small sample images of this folder from Debian's python3-skimage
(scikit-image's sample data; licences in skimage.data's docstrings, see README.md here):

  chelsea.jpg   skimage.data.chelsea(), the cat Chelsea, 256 x 170   (CC0, Stefan van der Walt)
  ihc.jpg       skimage.data.immunohistochemistry(), stained colonic glands, scaled to 256 x 256
                (acquired at the Center for Microscopy And Molecular Imaging; "no known copyright
                restrictions")
  brick.jpg     skimage.data.brick() (grey), scaled to 256 x 256    (CC0, CC0Textures Bricks25)

Run: apt-get install python3-skimage python3-pil; /usr/bin/python3 export_samples.py
"""
import os

from PIL import Image
from skimage import data

here = os.path.dirname(os.path.abspath(__file__))


def save(name, arr, size, crop=None):
    img = Image.fromarray(arr)
    if crop:
        img = img.crop(crop)
    img = img.convert("RGB").resize(size, Image.LANCZOS)
    path = os.path.join(here, name)
    img.save(path, quality=88, optimize=True)
    print(f"{path}: {img.size[0]} x {img.size[1]}, {os.path.getsize(path)} bytes")


save("chelsea.jpg", data.chelsea(), (256, 170))
save("ihc.jpg", data.immunohistochemistry(), (256, 256))
save("brick.jpg", data.brick(), (256, 256))
