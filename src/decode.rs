//! Link layer, IP and TCP header decoding into Segments. (stub)
