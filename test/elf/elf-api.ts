// What the tests use from src/elf: the public surface, plus the field-table decoder.
export * from '../../src/elf/index.js'
export {decodeStruct as decodeStructFor} from '../../src/binary/field-table.js'
