# Local test stack (ZooKeeper + Kafka 3.9.1 ZooKeeper-mode cluster + Kafka 4.1.1 KRaft node).
.PHONY: stack-up stack-down stack-clean stack-status

stack-up:
	deploy/stack.sh up

stack-down:
	deploy/stack.sh down

stack-clean:
	deploy/stack.sh clean

stack-status:
	deploy/stack.sh status
