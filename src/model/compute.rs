//! Compute target specs built from `computetarget create|attach|update` flags.
//! Backend-neutral: `arm` turns them into ARM bodies, `local` into stored targets.
