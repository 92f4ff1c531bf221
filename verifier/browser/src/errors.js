// The three ways a check or the reader can stop, mirroring DESIGN §5: input we cannot read at all
// (unusable), a check that found the evidence does not hold (fail), and a check that cannot run
// with the data given (skip). `missingTrust` marks a skip caused only by what the trust lacks.

export class Unusable extends Error {}

export class CheckFailure extends Error {}

export class Skip extends Error {
  constructor(message, { missingTrust = false } = {}) {
    super(message);
    this.missingTrust = missingTrust;
  }
}
