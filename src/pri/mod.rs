//! ISDN PRI: Q.921 and Q.931 (being written).
