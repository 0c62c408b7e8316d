"""The lazy metric registry: "name" -> "module:Class"; a metric's networks are imported only when used."""

from __future__ import annotations

from sfi_bench.metrics.base import ClipSample, Metric, MetricResult, MetricUnavailable
from sfi_core.registry import Registry, UnknownNameError

# Add metrics here; the module is imported only when the metric is asked for.
METRIC_REGISTRY: dict[str, str] = {
    "lpips": "sfi_bench.metrics.lpips_distance:VideoLPIPS",
    "fid": "sfi_bench.metrics.fid:FID",
    "kid": "sfi_bench.metrics.kid:KID",
    "psnr_all": "sfi_bench.metrics.psnr:AllFramePSNR",
    "ssim_all": "sfi_bench.metrics.ssim:AllFrameSSIM",
    "endpoint_psnr": "sfi_bench.metrics.psnr:EndpointPSNR",
    "endpoint_ssim": "sfi_bench.metrics.ssim:EndpointSSIM",
    "endpoint_lpips": "sfi_bench.metrics.lpips_distance:EndpointLPIPS",
    "viclip": "sfi_bench.metrics.viclip:ViCLIPScore",
    "temporal_flickering": "sfi_bench.metrics.temporal_flickering:TemporalFlickering",
    "motion_smoothness": "sfi_bench.metrics.motion_smoothness:MotionSmoothness",
    "motion_smoothness_rife": "sfi_bench.metrics.motion_smoothness_rife:MotionSmoothnessRIFE",
    "dynamic_degree": "sfi_bench.metrics.dynamic_degree:DynamicDegree",
    "dynamic_degree_dis": "sfi_bench.metrics.dynamic_degree:DynamicDegreeDIS",
    "aesthetic_quality": "sfi_bench.metrics.aesthetic_quality:AestheticQuality",
    "imaging_quality": "sfi_bench.metrics.imaging_quality:ImagingQuality",
}


class UnknownMetricError(UnknownNameError):
    pass


METRICS: Registry[type[Metric]] = Registry("metric", Metric, METRIC_REGISTRY, UnknownMetricError)

# The metric class registered as a name, and an instance of it.
metric_class = METRICS.get
make_metric = METRICS.create


__all__ = [
    "METRICS",
    "METRIC_REGISTRY",
    "ClipSample",
    "Metric",
    "MetricResult",
    "MetricUnavailable",
    "UnknownMetricError",
    "make_metric",
    "metric_class",
]
