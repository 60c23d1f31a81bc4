// Generates TypeScript types a frontend builds on:
//   generated/graphql.ts  from ../schema.graphql and the operations in operations/*.graphql
//                         (graphql-codegen's typescript-operations plugin: the operations'
//                         types with the enums and inputs they use);
//   generated/rest.ts     from generated/openapi.json (openapi-typescript).
// Usage: node codegen.mjs SCHEMA.graphql OPENAPI.json
// Fails on an operation the schema does not validate, and on a scalar with no TypeScript type.
import { readFileSync, readdirSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { codegen } from '@graphql-codegen/core';
import * as typescriptOperations from '@graphql-codegen/typescript-operations';
import { buildSchema, parse, validate } from 'graphql';
import openapiTS, { astToString } from 'openapi-typescript';

const [schemaPath = '../schema.graphql', openapiPath = 'generated/openapi.json'] = process.argv.slice(2);
const here = new URL('.', import.meta.url).pathname;
const out = join(here, 'generated');
mkdirSync(out, { recursive: true });

const sdl = readFileSync(schemaPath, 'utf8');
const schema = buildSchema(sdl);
const operationsDir = join(here, 'operations');
const documents = readdirSync(operationsDir)
  .filter((name) => name.endsWith('.graphql'))
  .sort()
  .map((name) => {
    const location = join(operationsDir, name);
    const document = parse(readFileSync(location, 'utf8'));
    const errors = validate(schema, document);
    if (errors.length > 0) {
      throw new Error(`${name} does not validate against the schema:\n${errors.map((e) => e.message).join('\n')}`);
    }
    return { location, document };
  });

const graphqlTs = await codegen({
  filename: 'generated/graphql.ts',
  schema: parse(sdl),
  documents,
  plugins: [{ typescriptOperations: {} }],
  pluginMap: { typescriptOperations },
  config: {
    // Money is exact in a JavaScript number (the schema says why); an unmapped scalar fails.
    strictScalars: true,
    scalars: { Money: 'number', DateTime: 'string', JSON: 'unknown', UUID: 'string' },
    enumsAsTypes: true,
    avoidOptionals: { field: true, inputValue: false, object: true, defaultValue: false },
    useTypeImports: true,
  },
});
writeFileSync(join(out, 'graphql.ts'), graphqlTs);

const openapi = JSON.parse(readFileSync(openapiPath, 'utf8'));
const restTs = astToString(await openapiTS(openapi));
writeFileSync(join(out, 'rest.ts'), restTs);
console.log(`generated ${documents.length} operations and ${Object.keys(openapi.paths).length} REST paths`);
