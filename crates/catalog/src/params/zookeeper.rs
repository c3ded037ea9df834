//! The ZooKeeper parameters a service may set (ZooKeeper 3.8-3.9). ZooKeeper turns any key of
//! zoo.cfg it does not know into a JVM system property `zookeeper.<key>`, so only these keys are
//! accepted; the JVM heap is `spec.zookeeper.heap`.

use super::kind::Kind::{self, *};
use super::kind::{INT_MAX, Param, p};

const TRUE_FALSE: Kind = OneOf(&["true", "false"]);

pub const PARAMS: &[Param] = &[
    p("tickTime", Int { min: 1, max: INT_MAX }),
    p("initLimit", Int { min: 1, max: INT_MAX }),
    p("syncLimit", Int { min: 1, max: INT_MAX }),
    p("connectToLearnerMasterLimit", Int { min: 0, max: INT_MAX }),
    p("maxClientCnxns", Int { min: 0, max: INT_MAX }),
    p("maxCnxns", Int { min: 0, max: INT_MAX }),
    p("minSessionTimeout", Int { min: 1, max: INT_MAX }),
    p("maxSessionTimeout", Int { min: 1, max: INT_MAX }),
    p("autopurge.snapRetainCount", Int { min: 3, max: INT_MAX }),
    p("autopurge.purgeInterval", Int { min: 0, max: INT_MAX }),
    p("snapCount", Int { min: 2, max: INT_MAX }),
    p("globalOutstandingLimit", Int { min: 1, max: INT_MAX }),
    p("preAllocSize", Int { min: 1, max: INT_MAX }),
    p("fsync.warningthresholdms", Int { min: 0, max: INT_MAX }),
    p("localSessionsEnabled", TRUE_FALSE),
    p("localSessionsUpgradingEnabled", TRUE_FALSE),
];
