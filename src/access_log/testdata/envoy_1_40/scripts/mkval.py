import sys, json
fmt = sys.argv[1]
cfg = {"static_resources": {"listeners": [{"name": "l", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 19101}},
  "filter_chains": [{"filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", "stat_prefix": "t", "cluster": "c",
    "access_log": [{"name": "envoy.access_loggers.file", "typed_config": {
       "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog", "path": "/dev/null",
       "log_format": {"text_format_source": {"inline_string": fmt}}}}]}}]}]}],
  "clusters": [{"name": "c", "connect_timeout": "1s", "type": "STATIC", "load_assignment": {"cluster_name": "c", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 19199}}}}]}]}}]}}
json.dump(cfg, open("val.json", "w"))
