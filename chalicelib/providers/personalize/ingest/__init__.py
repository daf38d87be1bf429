"""Records from SQS and Kinesis to Personalize: `forwarding` validates and packs the SPEC §4
envelopes into PutEvents, PutUsers and PutItems calls (`calls` builds them and judges each
answer), `requeue` hands on what is unfinished or can never succeed."""
