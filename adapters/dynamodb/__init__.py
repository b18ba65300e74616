"""The production stores on DynamoDB (pynamodb), used off the event loop in a bounded pool."""
