"""What happens to stored events over time: daily aggregation, archive, purge, partitions."""
