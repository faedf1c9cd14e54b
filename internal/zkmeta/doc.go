// Package zkmeta reads the ZooKeeper znodes of a ZooKeeper-mode Kafka
// cluster: every znode under the cluster's chroot with its data, ACLs,
// ephemeral flag and stat, for the metadata backup (the MRS procedure
// restores these znodes with the brokers stopped).
//
// Ephemeral znodes (/brokers/ids/*, /controller) are recorded so that a
// report can show what the cluster looked like, but a restore must skip
// them: they belong to broker sessions that no longer exist.
package zkmeta
