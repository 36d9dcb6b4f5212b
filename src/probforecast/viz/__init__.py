from probforecast.viz.fan_chart import fan_chart
from probforecast.viz.model_views import horizon_lines, matrix_heatmaps, mixture_weights_chart

__all__ = ["fan_chart", "horizon_lines", "matrix_heatmaps", "mixture_weights_chart"]
