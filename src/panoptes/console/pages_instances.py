"""Deployed applications: the list, and one instance with status, nodes, video, logs, metrics."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response, StreamingResponse

from panoptes.console.charts import svg_chart
from panoptes.console.feeds import (
    CHARTS,
    METRICS_SERVICE,
    chart_dimensions,
    read_logs,
    read_metric,
)
from panoptes.console.live import LiveUnavailable, open_mjpeg
from panoptes.console.pages_cameras import cameras_of
from panoptes.console.web import PREFIX, PageRequest, Refused, format_time
from panoptes.link import instance_log_group

#: The deployment's progress as the page draws it, in order.
PROGRESS = (
    ("DEPLOYMENT_PENDING", "Waiting for the device"),
    ("DEPLOYMENT_REQUESTED", "Sent to the device"),
    ("DEPLOYMENT_IN_PROGRESS", "Installing"),
    ("DEPLOYMENT_SUCCEEDED", "Running"),
)
ABSTRACT_CAMERA_PACKAGE = "abstract_rtsp_media_source"


async def instances_list(req: PageRequest) -> Response:
    apps = await req.all_pages("ListApplicationInstances", "ApplicationInstances")
    show_removed = req.request.query_params.get("removed") == "1"
    if not show_removed:
        apps = [a for a in apps if a["Status"] != "REMOVAL_SUCCEEDED"]
    return req.render("instances.html", title="Applications", apps=apps, show_removed=show_removed)


#: The instance page's logs start this far back (follow mode goes on from there).
LOG_WINDOW = timedelta(hours=1)


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


async def _instance(req: PageRequest) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    instance_id = req.param("instance_id")
    app = await req.call("DescribeApplicationInstance", {"ApplicationInstanceId": instance_id})
    nodes = await req.all_pages(
        "ListApplicationInstanceNodeInstances", "NodeInstances",
        {"ApplicationInstanceId": instance_id},
    )  # fmt: skip
    return app, nodes


def _camera_packages(req: PageRequest) -> set[str]:
    return {c["PackageName"] for c in cameras_of(req)} | {ABSTRACT_CAMERA_PACKAGE}


async def instance_detail(req: PageRequest) -> Response:
    app, nodes = await _instance(req)
    cameras = await run_in_threadpool(_camera_packages, req)
    instance_id = app["ApplicationInstanceId"]
    ctx = req.state.console.context(req.user)
    live = await run_in_threadpool(req.state.live.mjpeg_url, ctx, instance_id)
    q = req.request.query_params
    logs = await run_in_threadpool(
        lambda: read_logs(
            req.state.console, req.user,
            instance_log_group(app["DefaultRuntimeContextDevice"], instance_id),
            stream=q.get("stream") or None, pattern=q.get("filter") or None,
            start_ms=_ms(req.state.now() - LOG_WINDOW),
        )
    )  # fmt: skip
    now = req.state.now()
    charts = []
    for chart in CHARTS:
        dims = chart_dimensions(chart, app)
        series = await run_in_threadpool(
            lambda c=chart, d=dims: read_metric(req.state.console, req.user, c, d, now=now)
        )
        if series is not None:
            charts.append((chart, svg_chart(series)))
    return req.render(
        "instance.html",
        title=app.get("Name") or instance_id,
        app=app,
        nodes=[{**n, "IsCamera": n.get("PackageName") in cameras} for n in nodes],
        progress=PROGRESS,
        live=live is not None,
        logs=logs,
        log_stream=q.get("stream", ""),
        log_filter=q.get("filter", ""),
        charts=charts,
        metrics_available=req.state.console.has(METRICS_SERVICE),
    )


async def instance_status(req: PageRequest) -> Response:
    app, nodes = await _instance(req)
    return JSONResponse(
        {
            "Status": app["Status"],
            "StatusDescription": app.get("StatusDescription", ""),
            "HealthStatus": app["HealthStatus"],
            "Nodes": {n["NodeInstanceId"]: n["CurrentStatus"] for n in nodes},
        }
    )


async def instance_logs(req: PageRequest) -> Response:
    """Log events as JSON for the page's follow mode (after ``token``)."""
    app, _ = await _instance(req)
    q = req.request.query_params
    page = await run_in_threadpool(
        lambda: read_logs(
            req.state.console, req.user,
            instance_log_group(app["DefaultRuntimeContextDevice"], app["ApplicationInstanceId"]),
            stream=q.get("stream") or None, pattern=q.get("filter") or None,
            next_token=q.get("token") or None,
            start_ms=int(q["after"]) if q.get("after", "").isdigit() else None,
        )
    )  # fmt: skip
    return JSONResponse(
        {
            "available": page.available,
            "error": page.error,
            "events": [
                {
                    "time": format_time(e["timestamp"]),
                    "ms": e["ms"],
                    "stream": e["stream"],
                    "message": e["message"],
                }
                for e in page.events
            ],
            "token": page.next_token,
        }
    )


async def instance_signal(req: PageRequest) -> Response:
    instance_id = req.param("instance_id")
    node, signal = req.field("node"), req.field("signal")
    if signal not in ("PAUSE", "RESUME"):
        raise Refused(400, "signal: PAUSE or RESUME")
    await req.call(
        "SignalApplicationInstanceNodeInstances",
        {
            "ApplicationInstanceId": instance_id,
            "NodeSignals": [{"NodeInstanceId": node, "Signal": signal}],
        },
    )
    verb = "Pause" if signal == "PAUSE" else "Resume"
    return req.redirect(f"{PREFIX}/instances/{instance_id}", f"{verb} sent to camera {node}.")


async def instance_remove(req: PageRequest) -> Response:
    instance_id = req.param("instance_id")
    await req.call("RemoveApplicationInstance", {"ApplicationInstanceId": instance_id})
    return req.redirect(f"{PREFIX}/instances/{instance_id}", "Removal requested.")


async def instance_live(req: PageRequest) -> Response:
    """The instance's output video, relayed from the device (multipart MJPEG)."""
    instance_id = req.param("instance_id")
    await req.call("DescribeApplicationInstance", {"ApplicationInstanceId": instance_id})
    ctx = req.state.console.context(req.user)
    url = await run_in_threadpool(req.state.live.mjpeg_url, ctx, instance_id)
    if url is None:
        raise Refused(404, "this application has no live output yet")
    try:
        stream = await open_mjpeg(url)
    except LiveUnavailable as exc:
        raise Refused(502, str(exc)) from None
    return StreamingResponse(
        stream.body, media_type=stream.content_type, headers={"Cache-Control": "no-store"}
    )
