"""Caffe backend: `caffe time` on the board, its log parsed by edgeprof.parsers.caffe_time."""
