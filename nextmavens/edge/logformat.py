"""nginx's structured access log for metrics: the `log_format` the edge renders (one JSON line per request, nginx's
own JSON escaping). Its reader is nextmavens/metrics/accesslog.py, which parses exactly these fields."""

FORMAT_NAME = "nm_metrics"
LOG_FORMAT = (
    "log_format " + FORMAT_NAME + " escape=json '{\"t\":$msec,\"h\":\"$host\",\"p\":\"$nm_project\","
    "\"m\":\"$request_method\",\"u\":\"$uri\",\"s\":$status,\"rt\":$request_time}';"
)
