// Package kmeta reads and restores the logical metadata of a Kafka cluster
// through the Admin API only: topics (partitions, replication, the configs an
// operator set), ACLs, client quotas, SCRAM users, consumer-group offsets,
// the cluster id and the brokers' versions.
//
// It talks Kafka protocol and nothing else, so the same code serves
// ZooKeeper-mode clusters (Kafka 2.x/3.x) and KRaft clusters (3.x/4.x): the
// metadata backup of a KRaft cluster is this snapshot alone, and for a
// ZooKeeper-mode cluster it is stored beside the znode tree (package zkmeta)
// so that a data restore into any cluster can recreate topics and ACLs
// without reading ZooKeeper.
//
// The package has no workflow or storage dependencies: activities call it
// with a *kgo.Client they built for the cluster.
package kmeta
