"""Figures (image display, scale bars, overlays) and reports shared by every analysis."""

from .figures import add_scale_bar, image_axes, nice_scale_bar_length, save_figure, show_image

__all__ = ["add_scale_bar", "image_axes", "nice_scale_bar_length", "save_figure", "show_image"]
