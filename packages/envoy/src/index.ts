/** Placeholder until this package is filled. */
export {}
