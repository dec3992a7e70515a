//! Envoy 1.40 admin response bodies (from `envoy-captures/admin`, config `good.yaml`) that
//! the admin tests compare against, byte for byte.

/// `GET /help` (02).
pub(crate) const ENVOY_HELP: &str = r####"admin commands are:
  /: Admin home page
  /allocprofiler (POST): enable/disable the allocation profiler (if supported)
      enable: enable/disable the allocation profiler; One of (y, n)
  /certs: print certs on machine
  /clusters: upstream cluster status
      filter: Regular expression (Google re2) for filtering clusters by name
  /config_dump: dump current Envoy configs
      resource: The resource to dump
      mask: The mask to apply. When both resource and mask are specified, the mask is applied to every element in the desired repeated field so that only a subset of fields are returned. The mask is parsed as a Protobuf::FieldMask
      name_regex: Dump only the currently loaded configurations whose names match the specified regex. Can be used with both resource and mask query parameters.
      include_eds: Dump currently loaded configuration including EDS. See the response definition for more information
  /contention: dump current Envoy mutex contention stats (if enabled)
  /cpuprofiler (POST): enable/disable the CPU profiler
      enable: enables the CPU profiler; One of (y, n)
  /drain_listeners (POST): drain listeners
      graceful: When draining listeners, enter a graceful drain period prior to closing listeners. This behaviour and duration is configurable via server options or CLI
      skip_exit: When draining listeners, drain the connections but never stop the listeners. The graceful parameter has no effect when this is set, since the drain period only delays stopping the listeners
      inboundonly: Drains all inbound listeners. traffic_direction field in envoy_v3_api_msg_config.listener.v3.Listener is used to determine whether a listener is inbound or outbound.
  /healthcheck/fail (POST): cause the server to fail health checks
  /healthcheck/ok (POST): cause the server to pass health checks
  /heap_dump: dump current Envoy heap (if supported)
  /heapprofiler (POST): enable/disable the heap profiler
      enable: enable/disable the heap profiler; One of (y, n)
  /help: print out list of admin commands
  /hot_restart_version: print the hot restart compatibility version
  /init_dump: dump current Envoy init manager information (experimental)
      mask: The desired component to dump unready targets. The mask is parsed as a Protobuf::FieldMask. For example, get the unready targets of all listeners with /init_dump?mask=listener`
  /listeners: print listener info
      format: File format to use; One of (text, json)
  /logging (POST): query/change logging levels
      paths: Change multiple logging levels by setting to <logger_name1>:<desired_level1>,<logger_name2>:<desired_level2>. If fine grain logging is enabled, use __FILE__ or a glob experision as the logger name. For example, source/common*:warning
      group: Change given logger group to desired level, set to <logger_group_name>:<desired_level>. logger_group_name must be a logger name.
      level: desired logging level, this will change all loggers's level; One of (, trace, debug, info, warning, error, critical, off)
  /memory: print current allocation/heap usage
  /memory/tcmalloc: print TCMalloc stats
  /peak_heap_dump: dump peak Envoy heap (if supported)
  /quitquitquit (POST): exit the server
  /ready: print server state, return 200 if LIVE, otherwise return 503
  /reopen_logs (POST): reopen access logs
  /reset_counters (POST): reset all counters to zero
  /runtime: print runtime values
  /runtime_modify (POST): Adds or modifies runtime values as passed in query parameters. To delete a previously added key, use an empty string as the value. Note that deletion only applies to overrides added via this endpoint; values loaded from disk can be modified via override but not deleted. E.g. ?key1=value1&key2=value2...
  /server_info: print server version/status information
  /stats: print server stats
      usedonly: Only include stats that have been written by system since restart
      filter: Regular expression (Google re2) for filtering stats
      invert_filter: Invert the filter regex
      format: Format to use; One of (html, active-html, text, json)
      type: Stat types to include.; One of (All, Counters, Histograms, Gauges, TextReadouts)
      histogram_buckets: Histogram bucket display mode; One of (cumulative, disjoint, detailed, summary)
  /stats/prometheus: print server stats in prometheus format
      usedonly: Only include stats that have been written by system since restart
      text_readouts: Render text_readouts as new gaugues with value 0 (increases Prometheus data size)
      filter: Regular expression (Google re2) for filtering stats
      invert_filter: Invert the filter regex
      histogram_buckets: Histogram bucket display mode; One of (cumulative, summary)
  /stats/recentlookups: Show recent stat-name lookups
  /stats/recentlookups/clear (POST): clear list of stat-name lookups and counter
  /stats/recentlookups/disable (POST): disable recording of reset stat-name lookup names
  /stats/recentlookups/enable (POST): enable recording of reset stat-name lookup names
"####;

/// `GET /clusters?filter=echo` (x05), before any traffic.
pub(crate) const ENVOY_CLUSTERS_ECHO: &str = r####"echo_cluster::observability_name::echo_cluster
echo_cluster::default_priority::max_connections::1024
echo_cluster::default_priority::max_pending_requests::1024
echo_cluster::default_priority::max_requests::1024
echo_cluster::default_priority::max_retries::3
echo_cluster::high_priority::max_connections::1024
echo_cluster::high_priority::max_pending_requests::1024
echo_cluster::high_priority::max_requests::1024
echo_cluster::high_priority::max_retries::3
echo_cluster::added_via_api::false
echo_cluster::127.0.0.1:41013::cx_active::0
echo_cluster::127.0.0.1:41013::cx_connect_fail::0
echo_cluster::127.0.0.1:41013::cx_total::0
echo_cluster::127.0.0.1:41013::rq_active::0
echo_cluster::127.0.0.1:41013::rq_error::0
echo_cluster::127.0.0.1:41013::rq_pending_active::0
echo_cluster::127.0.0.1:41013::rq_success::0
echo_cluster::127.0.0.1:41013::rq_timeout::0
echo_cluster::127.0.0.1:41013::rq_total::0
echo_cluster::127.0.0.1:41013::hostname::
echo_cluster::127.0.0.1:41013::health_flags::healthy
echo_cluster::127.0.0.1:41013::weight::1
echo_cluster::127.0.0.1:41013::region::
echo_cluster::127.0.0.1:41013::zone::
echo_cluster::127.0.0.1:41013::sub_zone::
echo_cluster::127.0.0.1:41013::canary::false
echo_cluster::127.0.0.1:41013::priority::0
echo_cluster::127.0.0.1:41013::success_rate::-1
echo_cluster::127.0.0.1:41013::local_origin_success_rate::-1
"####;

/// `GET /clusters?format=json` (39), only `echo_cluster` (after one connection) and `empty_cluster`.
pub(crate) const ENVOY_CLUSTERS_JSON_ECHO_EMPTY: &str = r####"{
 "cluster_statuses": [
  {
   "name": "echo_cluster",
   "host_statuses": [
    {
     "address": {
      "socket_address": {
       "address": "127.0.0.1",
       "port_value": 41013
      }
     },
     "stats": [
      {
       "name": "cx_connect_fail"
      },
      {
       "value": "1",
       "name": "cx_total"
      },
      {
       "name": "rq_error"
      },
      {
       "name": "rq_success"
      },
      {
       "name": "rq_timeout"
      },
      {
       "value": "1",
       "name": "rq_total"
      },
      {
       "type": "GAUGE",
       "name": "cx_active"
      },
      {
       "type": "GAUGE",
       "name": "rq_active"
      },
      {
       "type": "GAUGE",
       "name": "rq_pending_active"
      }
     ],
     "health_status": {
      "eds_health_status": "HEALTHY"
     },
     "weight": 1,
     "locality": {}
    }
   ],
   "circuit_breakers": {
    "thresholds": [
     {
      "max_connections": 1024,
      "max_pending_requests": 1024,
      "max_requests": 1024,
      "max_retries": 3
     },
     {
      "priority": "HIGH",
      "max_connections": 1024,
      "max_pending_requests": 1024,
      "max_requests": 1024,
      "max_retries": 3
     }
    ]
   },
   "observability_name": "echo_cluster"
  },
  {
   "name": "empty_cluster",
   "circuit_breakers": {
    "thresholds": [
     {
      "max_connections": 1024,
      "max_pending_requests": 1024,
      "max_requests": 1024,
      "max_retries": 3
     },
     {
      "priority": "HIGH",
      "max_connections": 1024,
      "max_pending_requests": 1024,
      "max_requests": 1024,
      "max_retries": 3
     }
    ]
   },
   "observability_name": "empty_cluster"
  }
 ]
}
"####;

/// `GET /listeners` (40).
pub(crate) const ENVOY_LISTENERS: &str = r####"tcp_redis::127.0.0.1:41010
tcp_echo::127.0.0.1:41012
tcp_refused::127.0.0.1:41014
tcp_nohosts::127.0.0.1:41016
udp_echo::127.0.0.1:41020
"####;

/// `GET /listeners?format=json` (41).
pub(crate) const ENVOY_LISTENERS_JSON: &str = r####"{
 "listener_statuses": [
  {
   "name": "tcp_redis",
   "local_address": {
    "socket_address": {
     "address": "127.0.0.1",
     "port_value": 41010
    }
   }
  },
  {
   "name": "tcp_echo",
   "local_address": {
    "socket_address": {
     "address": "127.0.0.1",
     "port_value": 41012
    }
   }
  },
  {
   "name": "tcp_refused",
   "local_address": {
    "socket_address": {
     "address": "127.0.0.1",
     "port_value": 41014
    }
   }
  },
  {
   "name": "tcp_nohosts",
   "local_address": {
    "socket_address": {
     "address": "127.0.0.1",
     "port_value": 41016
    }
   }
  },
  {
   "name": "udp_echo",
   "local_address": {
    "socket_address": {
     "address": "127.0.0.1",
     "port_value": 41020
    }
   }
  }
 ]
}
"####;

/// `GET /config_dump?resource=static_clusters&name_regex=echo.*` (37).
pub(crate) const ENVOY_DUMP_NAME_REGEX: &str = r####"{
 "configs": [
  {
   "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.StaticCluster",
   "cluster": {
    "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    "name": "echo_cluster",
    "type": "STATIC",
    "connect_timeout": "1s",
    "load_assignment": {
     "cluster_name": "echo_cluster",
     "endpoints": [
      {
       "lb_endpoints": [
        {
         "endpoint": {
          "address": {
           "socket_address": {
            "address": "127.0.0.1",
            "port_value": 41013
           }
          }
         }
        }
       ]
      }
     ]
    }
   },
   "last_updated": "2026-11-22T00:48:56.491Z"
  }
 ]
}
"####;

/// `GET /config_dump?resource=static_listeners&mask=listener.name` (36).
pub(crate) const ENVOY_DUMP_LISTENER_NAMES: &str = r####"{
 "configs": [
  {
   "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump.StaticListener",
   "listener": {
    "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
    "name": "tcp_redis"
   }
  },
  {
   "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump.StaticListener",
   "listener": {
    "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
    "name": "tcp_echo"
   }
  },
  {
   "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump.StaticListener",
   "listener": {
    "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
    "name": "tcp_refused"
   }
  },
  {
   "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump.StaticListener",
   "listener": {
    "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
    "name": "tcp_nohosts"
   }
  },
  {
   "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump.StaticListener",
   "listener": {
    "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
    "name": "udp_echo"
   }
  }
 ]
}
"####;

/// `GET /config_dump?resource=static_clusters&mask=cluster.name` (x03).
pub(crate) const ENVOY_DUMP_CLUSTER_NAMES: &str = r####"{
 "configs": [
  {
   "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.StaticCluster",
   "cluster": {
    "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    "name": "echo_cluster"
   }
  },
  {
   "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.StaticCluster",
   "cluster": {
    "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    "name": "empty_cluster"
   }
  },
  {
   "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.StaticCluster",
   "cluster": {
    "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    "name": "redis_cluster"
   }
  },
  {
   "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.StaticCluster",
   "cluster": {
    "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    "name": "refused_cluster"
   }
  },
  {
   "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.StaticCluster",
   "cluster": {
    "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    "name": "udp_cluster"
   }
  }
 ]
}
"####;

/// `POST /logging?bogus=debug` (61), up to the logger list.
pub(crate) const ENVOY_LOGGING_ERROR_HEAD: &str = r####"error: unknown logger name

usage: /logging?<name>=<level> (change single level)
usage: /logging?paths=name1:level1,name2:level2,... (change multiple levels)
usage: /logging?level=<level> (change all levels)
usage: /logging?group=<group_name>:<level> (change group of loggers)
levels: trace debug info warning error critical off 
"####;
