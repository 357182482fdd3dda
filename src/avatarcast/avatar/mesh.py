"""Indices into MediaPipe's 468-point face mesh that the animators and masks use."""

from __future__ import annotations

# Lips, each contour from the subject's right mouth corner to the left one.
OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)

# The face outline, clockwise from the top of the forehead.
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)

MOUTH_RIGHT, MOUTH_LEFT = 61, 291
UPPER_LIP_TOP = 0
CHIN = 152
NOSE_BOTTOM = 2
